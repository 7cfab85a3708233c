package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/allocator"
	"github.com/shmkit/shmkit/internal/procfs"
	"github.com/shmkit/shmkit/segment"
)

// chanLimits are a channel's configured limits.
type chanLimits struct {
	MaxMessage     int `json:"max_message"`
	RingDepth      int `json:"ring_depth"`
	MaxPublishers  int `json:"max_publishers"`
	MaxSubscribers int `json:"max_subscribers"`
	MaxProcesses   int `json:"max_processes"`
	ChunksPerClass int `json:"chunks_per_class"`
}

// chanParticipant is one participant slot in use, with its counters.
type chanParticipant struct {
	Slot       int       `json:"slot"`
	Role       string    `json:"role"`
	State      string    `json:"state"`
	PID        int       `json:"pid"`
	Start      uint64    `json:"start"`
	Alive      bool      `json:"alive"`
	Messages   uint64    `json:"messages"`
	Bytes      uint64    `json:"bytes"`
	Drops      uint64    `json:"drops"`
	Missed     uint64    `json:"missed"`
	BlockedNs  int64     `json:"blocked_ns"`
	Held       int       `json:"held"`
	LastActive time.Time `json:"last_active,omitzero"`
	// Relay holds the far side's figures of a relay (a bridge's
	// participant); nil for every other participant.
	Relay *chanRelay `json:"relay,omitempty"`
}

// chanRelay is a participant's relay block (shmkit.RelayStats).
type chanRelay struct {
	Kind       string `json:"kind"`
	Messages   uint64 `json:"messages"`
	Bytes      uint64 `json:"bytes"`
	Drops      uint64 `json:"drops"`
	Reconnects uint64 `json:"reconnects"`
	Lag        uint64 `json:"lag"`
}

// chanRing is one row of Stats.Rings: a subscriber slot's unreleased
// messages in all logs (pub/sub) or the work queue's queued messages;
// Subscriber is the pid of the subscriber in its slot (0 when none, or
// for a work queue).
type chanRing struct {
	Ring       int  `json:"ring"`
	Depth      int  `json:"depth"`
	Len        int  `json:"len"`
	Closed     bool `json:"closed"`
	Subscriber int  `json:"subscriber_pid,omitempty"`
}

// chanPool is the pool's totals plus its size classes.
type chanPool struct {
	Total    int                    `json:"total"`
	Free     int                    `json:"free"`
	InUse    int                    `json:"in_use"`
	InFlight int                    `json:"in_flight"`
	Failed   uint64                 `json:"failed"`
	Classes  []allocator.ClassStats `json:"classes"`
}

// chanSnapshot is what one shmkit.Inspect read of a channel says, in the
// form inspect, stat and watch print (-o json) and metrics exports.
type chanSnapshot struct {
	Name         string            `json:"name"`
	Backend      string            `json:"backend"`
	Time         time.Time         `json:"time"`
	Pattern      string            `json:"pattern"`
	Policy       string            `json:"policy"`
	Limits       chanLimits        `json:"limits"`
	Participants []chanParticipant `json:"participants"`
	Rings        []chanRing        `json:"rings"`
	Pool         chanPool          `json:"pool"`
	// Taps are the taps attached (shmctl tap, shmkit.OpenTap).
	Taps []chanTap `json:"taps"`
	// Warning is a problem in part of the read (a corrupt participant
	// entry or ring): the rest of the figures stand.
	Warning string `json:"warning,omitempty"`
}

// chanTap is one attached tap. While any is attached, publishers copy
// each message into the channel's tap ring; a dead one is cleared by the
// next liveness scan of a participant.
type chanTap struct {
	Slot     int    `json:"slot"`
	PID      int    `json:"pid"`
	Start    uint64 `json:"start"`
	Alive    bool   `json:"alive"`
	State    string `json:"state"`
	Received uint64 `json:"received"`
	Missed   uint64 `json:"missed"`
}

func chanTaps(ts []shmkit.TapInfo) []chanTap {
	out := []chanTap{}
	for _, t := range ts {
		out = append(out, chanTap{Slot: t.Slot, PID: t.PID, Start: t.Start, Alive: t.PID > 0 && procfs.Alive(t.PID, t.Start),
			State: t.State, Received: t.Received, Missed: t.Missed})
	}
	return out
}

// readChannel reads the channel NAME on backend b with shmkit.Inspect,
// which attaches read-only and disturbs nobody. A segment that is not a
// channel is an error wrapping shmkit.ErrBadMagic.
func readChannel(b segment.Backend, name string) (chanSnapshot, error) {
	cfg, st, err := shmkit.Inspect(name, shmkit.WithBackend(b))
	now := time.Now()
	if err != nil && cfg.RingDepth == 0 {
		return chanSnapshot{}, err
	}
	s := chanSnapshot{
		Name: name, Backend: b.String(), Time: now, Pattern: cfg.Pattern.String(), Policy: cfg.Policy.String(),
		Limits: chanLimits{MaxMessage: cfg.MaxMessage, RingDepth: cfg.RingDepth, MaxPublishers: cfg.MaxPublishers,
			MaxSubscribers: cfg.MaxSubscribers, MaxProcesses: cfg.MaxProcesses, ChunksPerClass: cfg.ChunksPerClass},
		Participants: []chanParticipant{}, Rings: []chanRing{}, Taps: chanTaps(st.Taps),
		Pool: chanPool{Total: st.Pool.Total, Free: st.Pool.Free, InUse: st.Pool.InUse, InFlight: st.Pool.InFlight,
			Failed: st.Pool.Failed, Classes: st.Classes},
	}
	if s.Pool.Classes == nil {
		s.Pool.Classes = []allocator.ClassStats{}
	}
	if err != nil {
		s.Warning = err.Error()
	}
	subs := map[int]int{}
	for _, p := range st.Participants {
		cp := chanParticipant{
			Slot: p.Slot, Role: string(p.Role), State: p.State, PID: p.PID, Start: p.Start,
			Alive:    p.PID > 0 && procfs.Alive(p.PID, p.Start),
			Messages: p.Messages, Bytes: p.Bytes, Drops: p.Drops, Missed: p.Missed,
			BlockedNs: int64(p.Blocked), Held: p.Held, LastActive: p.LastActive,
		}
		if r := p.Relay; r.Kind != "" {
			cp.Relay = &chanRelay{Kind: r.Kind, Messages: r.Messages, Bytes: r.Bytes, Drops: r.Drops,
				Reconnects: r.Reconnects, Lag: r.Lag}
		}
		s.Participants = append(s.Participants, cp)
		if p.Role == "subscriber" {
			subs[p.Slot] = p.PID
		}
	}
	for _, r := range st.Rings {
		s.Rings = append(s.Rings, chanRing{Ring: r.Ring, Depth: r.Depth, Len: r.Len, Closed: r.Closed, Subscriber: subs[r.Ring]})
	}
	return s, nil
}

// readChannelArg resolves the backend flags and reads the channel, saying
// plainly when NAME is a segment but not a channel.
func readChannelArg(bf *backendFlags, name string) (segment.Backend, chanSnapshot, error) {
	b, err := channelBackend(bf)
	if err != nil {
		return 0, chanSnapshot{}, err
	}
	s, err := readWhole(b, name)
	if err != nil {
		return 0, chanSnapshot{}, notChannel(name, err)
	}
	return b, s, nil
}

// channelBackend resolves the backend flags of a command that takes a
// channel (found by name only, never by a SysV key).
func channelBackend(bf *backendFlags) (segment.Backend, error) {
	b, opts, err := bf.resolve()
	if err != nil {
		return 0, err
	}
	if opts != nil && opts.SysVKey != 0 {
		return 0, fmt.Errorf("--sysv-key: channels are found by name only")
	}
	return b, nil
}

// notChannel says plainly when NAME is a segment but not a channel;
// other errors pass unchanged.
func notChannel(name string, err error) error {
	if errors.Is(err, shmkit.ErrBadMagic) {
		return fmt.Errorf("%s is a segment but not a shmkit channel: %w", name, err)
	}
	return err
}

// checkCount checks a --count flag: 0 for no end, or more.
func checkCount(n int) error {
	if n < 0 {
		return fmt.Errorf("invalid --count %d (want 0 for no end, or more)", n)
	}
	return nil
}

// readWhole is readChannel for stat and watch, which show rates only from
// a read without problems: a corrupt participant entry or ring is an error.
func readWhole(b segment.Backend, name string) (chanSnapshot, error) {
	s, err := readChannel(b, name)
	if err == nil && s.Warning != "" {
		err = fmt.Errorf("channel %s: %s", name, s.Warning)
	}
	return s, err
}

// isChannel reports whether seg holds a channel (a "chan" region).
func isChannel(seg *segment.Segment) bool {
	_, err := seg.Region("chan")
	return err == nil
}

// The channel participant table counts for gc and rm: a live registered
// participant holds the segment.
func init() {
	participantSources = append(participantSources, func(seg *segment.Segment) ([]participant, error) {
		if !isChannel(seg) {
			return nil, nil
		}
		name := seg.Name()
		if seg.Backend() == segment.File {
			name = seg.Path()
		}
		_, st, err := shmkit.Inspect(name, shmkit.WithBackend(seg.Backend()))
		if err != nil {
			return nil, err
		}
		ps := make([]participant, 0, len(st.Participants))
		for _, p := range st.Participants {
			if p.PID > 0 {
				ps = append(ps, participant{PID: p.PID, Start: p.Start})
			}
		}
		return ps, nil
	})
}

// inspectChannel decodes the channel in a segment inspect shows (nil when
// it holds none); a channel that cannot be read is reported in Warning.
func inspectChannel(b segment.Backend, name string, info segment.Info) *chanSnapshot {
	found := false
	for _, r := range info.Regions {
		found = found || r.Name == "chan"
	}
	if !found {
		return nil
	}
	s, err := readChannel(b, name)
	if err != nil {
		s = chanSnapshot{Name: name, Backend: b.String(), Warning: err.Error()}
	}
	return &s
}

// printChannel writes the channel section of inspect.
func printChannel(out io.Writer, s *chanSnapshot) error {
	if s == nil {
		return nil
	}
	fmt.Fprintf(out, "\nchannel:\n")
	if s.Limits.RingDepth == 0 {
		_, err := fmt.Fprintf(out, "  cannot decode it: %s\n", s.Warning)
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "  pattern:\t%s\n", s.Pattern)
	fmt.Fprintf(w, "  policy:\t%s\n", s.Policy)
	l := s.Limits
	fmt.Fprintf(w, "  limits:\tmax message %d, ring depth %d, %d publishers, %d subscribers, %d processes, %d chunks per class\n",
		l.MaxMessage, l.RingDepth, l.MaxPublishers, l.MaxSubscribers, l.MaxProcesses, l.ChunksPerClass)
	if s.Warning != "" {
		fmt.Fprintf(w, "  warning:\t%s\n", s.Warning)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nparticipants:\n")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SLOT\tROLE\tSTATE\tPID\tLIVE\tMESSAGES\tBYTES\tDROPS\tMISSED\tBLOCKED\tHELD\t")
	for _, p := range s.Participants {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%d\t\n", p.Slot, p.Role, p.State, p.PID, aliveWord(p.Alive),
			p.Messages, p.Bytes, p.Drops, p.Missed, time.Duration(p.BlockedNs).Round(time.Microsecond), p.Held)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if hasRelays(s.Participants) {
		fmt.Fprintf(out, "\nrelays:\n")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "SLOT\tROLE\tKIND\tMESSAGES\tBYTES\tDROPS\tRECONNECTS\tLAG\t")
		for _, p := range s.Participants {
			if r := p.Relay; r != nil {
				fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", p.Slot, p.Role, r.Kind, r.Messages, r.Bytes, r.Drops, r.Reconnects, r.Lag)
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nrings:\n")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "RING\tSUBSCRIBER\tDEPTH\tLEN\tCLOSED\t")
	for _, r := range s.Rings {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%v\t\n", r.Ring, r.Subscriber, r.Depth, r.Len, r.Closed)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(s.Taps) > 0 {
		fmt.Fprintf(out, "\ntaps:\n")
		if err := printTaps(out, s.Taps); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\npool: %d chunks, %d free, %d in use, %d in flight, %d failed loans\n",
		s.Pool.Total, s.Pool.Free, s.Pool.InUse, s.Pool.InFlight, s.Pool.Failed)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "CLASS\tTOTAL\tFREE\tIN USE\tIN FLIGHT\tHIGH WATER\tFAILED\t")
	for _, c := range s.Pool.Classes {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", sizeString(int64(c.Size)), c.Total, c.Free, c.InUse, c.InFlight, c.HighWater, c.Failed)
	}
	return w.Flush()
}

// hasRelays reports whether any participant is a relay.
func hasRelays(ps []chanParticipant) bool {
	for _, p := range ps {
		if p.Relay != nil {
			return true
		}
	}
	return false
}

func aliveWord(a bool) string {
	if a {
		return "alive"
	}
	return "dead"
}

func printTaps(out io.Writer, taps []chanTap) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "TAP\tPID\tLIVE\tSTATE\tRECEIVED\tMISSED\t")
	for _, t := range taps {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%d\t%d\t\n", t.Slot, t.PID, aliveWord(t.Alive), t.State, t.Received, t.Missed)
	}
	return w.Flush()
}
