package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// rateParticipant is a participant with its rates over the interval. A
// participant that was not in the same slot (same pid and start time) at
// the first read has no rates (New is true).
type rateParticipant struct {
	chanParticipant
	New          bool    `json:"new,omitempty"`
	MsgsPerSec   float64 `json:"messages_per_sec"`
	BytesPerSec  float64 `json:"bytes_per_sec"`
	DropsPerSec  float64 `json:"drops_per_sec"`
	MissedPerSec float64 `json:"missed_per_sec"`
	// BlockedFrac is the share of the interval it spent waiting in
	// Publish or Receive (0 to 1).
	BlockedFrac float64 `json:"blocked_fraction"`
	// DeltaMessages is the messages counted between the two reads.
	DeltaMessages uint64 `json:"delta_messages"`
	// RelayRates are a relay's far-side rates (nil unless the participant
	// is a relay with rates).
	RelayRates *relayRates `json:"relay_rates,omitempty"`
}

// relayRates are a relay's figures per second over the interval.
type relayRates struct {
	MsgsPerSec       float64 `json:"messages_per_sec"`
	BytesPerSec      float64 `json:"bytes_per_sec"`
	DropsPerSec      float64 `json:"drops_per_sec"`
	ReconnectsPerSec float64 `json:"reconnects_per_sec"`
}

// statOut is one stat result: the second of two reads, with rates over
// the interval between them.
type statOut struct {
	Name        string            `json:"name"`
	Backend     string            `json:"backend"`
	Time        time.Time         `json:"time"`
	IntervalSec float64           `json:"interval_sec"`
	Pattern     string            `json:"pattern"`
	Policy      string            `json:"policy"`
	Limits      chanLimits        `json:"limits"`
	Publishers  int               `json:"publishers"`
	Subscribers int               `json:"subscribers"`
	Blocked     int               `json:"blocked_publishers"`
	Parts       []rateParticipant `json:"participants"`
	Rings       []chanRing        `json:"rings"`
	Pool        chanPool          `json:"pool"`
	Taps        []chanTap         `json:"taps"`
	Warning     string            `json:"warning,omitempty"`
}

// rates compares two reads of one channel.
func rates(a, b chanSnapshot) statOut {
	dt := b.Time.Sub(a.Time).Seconds()
	o := statOut{Name: b.Name, Backend: b.Backend, Time: b.Time, IntervalSec: dt, Pattern: b.Pattern, Policy: b.Policy,
		Limits: b.Limits, Rings: b.Rings, Pool: b.Pool, Warning: b.Warning, Parts: []rateParticipant{}, Taps: b.Taps}
	prev := map[int]chanParticipant{}
	for _, p := range a.Participants {
		prev[p.Slot] = p
	}
	for _, p := range b.Participants {
		r := rateParticipant{chanParticipant: p}
		q, ok := prev[p.Slot]
		if !ok || q.PID != p.PID || q.Start != p.Start || q.Role != p.Role || p.Messages < q.Messages || dt <= 0 {
			r.New = true
		} else {
			d := func(x, y uint64) float64 {
				if x < y {
					return 0
				}
				return float64(x-y) / dt
			}
			r.DeltaMessages = p.Messages - q.Messages
			r.MsgsPerSec = d(p.Messages, q.Messages)
			r.BytesPerSec = d(p.Bytes, q.Bytes)
			r.DropsPerSec = d(p.Drops, q.Drops)
			r.MissedPerSec = d(p.Missed, q.Missed)
			if p.Relay != nil && q.Relay != nil && p.Relay.Kind == q.Relay.Kind {
				r.RelayRates = &relayRates{
					MsgsPerSec: d(p.Relay.Messages, q.Relay.Messages), BytesPerSec: d(p.Relay.Bytes, q.Relay.Bytes),
					DropsPerSec: d(p.Relay.Drops, q.Relay.Drops), ReconnectsPerSec: d(p.Relay.Reconnects, q.Relay.Reconnects),
				}
			}
			if p.BlockedNs > q.BlockedNs {
				r.BlockedFrac = min(1, float64(p.BlockedNs-q.BlockedNs)/1e9/dt)
				if p.Role == "publisher" || p.Role == "producer" {
					o.Blocked++
				}
			}
		}
		switch p.Role {
		case "publisher", "producer":
			o.Publishers++
		case "subscriber", "consumer":
			o.Subscribers++
		}
		o.Parts = append(o.Parts, r)
	}
	return o
}

func printStat(out io.Writer, s statOut) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "channel:\t%s (%s, %s, %s)\n", s.Name, s.Backend, s.Pattern, s.Policy)
	fmt.Fprintf(w, "time:\t%s, over %.3fs\n", s.Time.Format(time.RFC3339), s.IntervalSec)
	fmt.Fprintf(w, "participants:\t%d publishers (%d blocked), %d subscribers\n", s.Publishers, s.Blocked, s.Subscribers)
	fmt.Fprintf(w, "pool:\t%d of %d chunks in use, %d in flight, %d failed loans\n", s.Pool.InUse, s.Pool.Total, s.Pool.InFlight, s.Pool.Failed)
	if len(s.Taps) > 0 {
		fmt.Fprintf(w, "taps:\t%d attached (publishers copy every message for them)\n", len(s.Taps))
	}
	if s.Warning != "" {
		fmt.Fprintf(w, "warning:\t%s\n", s.Warning)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SLOT\tROLE\tPID\tLIVE\tMSG/S\tBYTES/S\tDROPS/S\tMISSED/S\tBLOCKED\tMESSAGES\tDROPS\tMISSED\t")
	for _, p := range s.Parts {
		blocked := fmt.Sprintf("%.0f%%", 100*p.BlockedFrac)
		if p.New {
			blocked = "new"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%.0f\t%s\t%.0f\t%.0f\t%s\t%d\t%d\t%d\t\n", p.Slot, p.Role, p.PID, aliveWord(p.Alive),
			p.MsgsPerSec, humanize.IBytes(uint64(p.BytesPerSec)), p.DropsPerSec, p.MissedPerSec, blocked, p.Messages, p.Drops, p.Missed)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printRelayRates(out, s.Parts); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "RING\tSUBSCRIBER\tLEN\tDEPTH\tCLOSED\t")
	for _, r := range s.Rings {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%v\t\n", r.Ring, r.Subscriber, r.Len, r.Depth, r.Closed)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "CLASS\tTOTAL\tFREE\tIN USE\tIN FLIGHT\tFAILED\t")
	for _, c := range s.Pool.Classes {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t\n", sizeString(int64(c.Size)), c.Total, c.Free, c.InUse, c.InFlight, c.Failed)
	}
	return w.Flush()
}

// printRelayRates writes the relays' table of stat (nothing when the
// channel has no relay): the far side's rates and totals per relay.
func printRelayRates(out io.Writer, parts []rateParticipant) error {
	has := false
	for _, p := range parts {
		has = has || p.Relay != nil
	}
	if !has {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SLOT\tRELAY\tMSG/S\tBYTES/S\tDROPS/S\tMESSAGES\tBYTES\tDROPS\tRECONNECTS\tLAG\t")
	for _, p := range parts {
		r := p.Relay
		if r == nil {
			continue
		}
		rr := relayRates{}
		if p.RelayRates != nil {
			rr = *p.RelayRates
		}
		fmt.Fprintf(w, "%d\t%s\t%.0f\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t\n", p.Slot, r.Kind, rr.MsgsPerSec,
			humanize.IBytes(uint64(rr.BytesPerSec)), rr.DropsPerSec, r.Messages, r.Bytes, r.Drops, r.Reconnects, r.Lag)
	}
	return w.Flush()
}

// checkInterval checks --interval.
func checkInterval(d time.Duration) error {
	if d < 10*time.Millisecond || d > time.Hour {
		return fmt.Errorf("invalid --interval %v (want 10ms to 1h)", d)
	}
	return nil
}

func init() {
	var (
		bf       backendFlags
		output   string
		interval time.Duration
	)
	stat := &cobra.Command{
		Use:   "stat NAME [--interval 1s] [--backend posix|sysv|file] [-o json]",
		Short: "Show a channel's rates, ring occupancy, pool use and drops (two reads an interval apart)",
		Long: `stat reads the channel's counters twice, --interval apart, without joining
the channel, and prints messages and bytes per second per publisher and
subscriber, drops, blocked publishers, ring occupancy and pool use. A
participant that relays the channel elsewhere (shmctl bridge) also shows
its far side's rates and totals: messages, bytes, drops, reconnects, lag.`,
		Example: `  shmctl stat orders
  shmctl stat orders --interval 250ms -o json`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := checkInterval(interval); err != nil {
				return err
			}
			b, first, err := readChannelArg(&bf, args[0])
			if err != nil {
				return err
			}
			time.Sleep(interval)
			second, err := readWhole(b, args[0])
			if err != nil {
				return err
			}
			s := rates(first, second)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return printStat(cmd.OutOrStdout(), s)
		}),
	}
	bf.add(stat)
	addOutputFlag(stat, &output)
	stat.Flags().DurationVar(&interval, "interval", time.Second, "time between the two reads")
	rootCmd.AddCommand(stat)

	var (
		wbf       backendFlags
		woutput   string
		winterval time.Duration
		count     int
	)
	watch := &cobra.Command{
		Use:   "watch NAME [--interval 1s] [--count N] [--backend posix|sysv|file] [-o json]",
		Short: "Follow a channel's stat every interval (in place on a terminal; -o json: one object per line)",
		Example: `  shmctl watch orders
  shmctl watch orders --interval 500ms --count 10 -o json`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(woutput); err != nil {
				return err
			}
			if err := checkInterval(winterval); err != nil {
				return err
			}
			if err := checkCount(count); err != nil {
				return err
			}
			b, prev, err := readChannelArg(&wbf, args[0])
			if err != nil {
				return err
			}
			return watchLoop(cmd.OutOrStdout(), b, args[0], prev, winterval, count, woutput == "json")
		}),
	}
	wbf.add(watch)
	addOutputFlag(watch, &woutput)
	watch.Flags().DurationVar(&winterval, "interval", time.Second, "time between updates")
	watch.Flags().IntVar(&count, "count", 0, "stop after this many updates (0: until interrupted)")
	rootCmd.AddCommand(watch)
}

// watchLoop prints count updates (0: until SIGINT/SIGTERM). On a terminal
// the text form redraws in place with ANSI escapes; JSON is one compact
// object per line. A channel that disappears ends the watch with an error.
func watchLoop(out io.Writer, b segment.Backend, name string, prev chanSnapshot, interval time.Duration, count int, asJSON bool) error {
	tty := false
	if f, ok := out.(*os.File); ok && !asJSON {
		tty = term.IsTerminal(int(f.Fd()))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	enc := json.NewEncoder(out)
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-tick.C:
		case <-sig:
			return nil
		}
		cur, err := readWhole(b, name)
		if err != nil {
			return err
		}
		s := rates(prev, cur)
		prev = cur
		switch {
		case asJSON:
			if err := enc.Encode(s); err != nil {
				return err
			}
		case tty:
			fmt.Fprint(out, "\x1b[H\x1b[2J")
			if err := printStat(out, s); err != nil {
				return err
			}
		default:
			if n > 0 {
				fmt.Fprintln(out)
			}
			if err := printStat(out, s); err != nil {
				return err
			}
		}
	}
	return nil
}
