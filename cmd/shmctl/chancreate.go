package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/spf13/cobra"
)

// chanCreateFlags are create's flags for a channel (create --channel).
type chanCreateFlags struct {
	pattern, policy, maxMessage string
	ringDepth, publishers       int
	subscribers, processes      int
	chunks, tapSlots, tapSnap   int
	liveness                    time.Duration
	keep                        bool
	mode                        os.FileMode // from create's --mode
	group                       string
}

func (f *chanCreateFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.pattern, "pattern", "pubsub", "channel: pubsub (every subscriber gets every message) or workqueue (each message to one consumer)")
	fl.StringVar(&f.policy, "policy", "block", "channel: what a publisher does when its log (a work queue: the queue) is full: block, drop-newest or drop-oldest (pub/sub only)")
	fl.StringVar(&f.maxMessage, "max-message", "", fmt.Sprintf("channel: largest message (e.g. 4KiB; default %d bytes)", shmkit.DefaultMaxMessage))
	fl.IntVar(&f.ringDepth, "ring-depth", 0, fmt.Sprintf("channel: a power of two that sizes each publisher's log (room for that many 256-byte records) or is a work queue's slot count (default %d)", shmkit.DefaultRingDepth))
	fl.IntVar(&f.publishers, "publishers", 0, fmt.Sprintf("channel: most publishers at once (default %d)", shmkit.DefaultMaxPublishers))
	fl.IntVar(&f.subscribers, "subscribers", 0, fmt.Sprintf("channel: most subscribers (consumers) at once, at most %d (default %d)", shmkit.MaxSubscribers, shmkit.DefaultMaxSubscribers))
	fl.IntVar(&f.processes, "processes", 0, "channel: most processes with a handle at once (default publishers + subscribers)")
	fl.IntVar(&f.chunks, "chunks-per-class", 0, "channel: pool chunks per size class (default 1: no message lives in the pool)")
	fl.IntVar(&f.tapSlots, "tap-slots", 0, "channel: slots of the tap ring (default 256; -1: no tap)")
	fl.IntVar(&f.tapSnap, "tap-snap", 0, "channel: bytes a tap captures per message (default 256)")
	fl.DurationVar(&f.liveness, "liveness", 0, "channel: how often participants look for dead peers (default 100ms)")
	fl.StringVar(&f.group, "group", "", "channel: the segment's group, a name or gid (with --mode 0660, its members join with --group)")
	fl.BoolVar(&f.keep, "keep", true, "channel: keep it when no process uses it, until shmctl rm (a channel shmctl creates must be kept)")
	completeFixed(cmd, "pattern", "pubsub", "workqueue")
	completeFixed(cmd, "policy", "block", "drop-newest", "drop-oldest")
}

// config builds the channel configuration the flags describe.
func (f *chanCreateFlags) config(b shmkit.Backend) (shmkit.Config, error) {
	c := shmkit.Config{Backend: b, RingDepth: f.ringDepth, MaxPublishers: f.publishers, MaxSubscribers: f.subscribers,
		MaxProcesses: f.processes, ChunksPerClass: f.chunks, TapSlots: f.tapSlots, TapSnap: f.tapSnap,
		LivenessInterval: f.liveness, Keep: true, Mode: f.mode, Group: f.group}
	var err error
	if c.Pattern, err = parsePattern(f.pattern); err != nil {
		return c, err
	}
	if c.Policy, err = parsePolicy(f.policy); err != nil {
		return c, err
	}
	if f.maxMessage != "" {
		n, err := parseSize(f.maxMessage)
		if err != nil {
			return c, fmt.Errorf("invalid --max-message: %w", err)
		}
		c.MaxMessage = int(n)
	}
	if !f.keep {
		return c, fmt.Errorf("--keep=false: a channel shmctl creates must be kept (no process holds it once shmctl exits); remove it with shmctl rm")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"ring-depth", f.ringDepth}, {"publishers", f.publishers}, {"subscribers", f.subscribers},
		{"processes", f.processes}, {"chunks-per-class", f.chunks}, {"tap-snap", f.tapSnap}} {
		if v.n < 0 {
			return c, fmt.Errorf("invalid --%s %d (want a positive number, or leave it out for the default)", v.name, v.n)
		}
	}
	if f.liveness < 0 {
		return c, fmt.Errorf("invalid --liveness %v", f.liveness)
	}
	return c, nil
}

func parsePattern(s string) (shmkit.Pattern, error) {
	switch strings.ToLower(s) {
	case "pubsub":
		return shmkit.PubSub, nil
	case "workqueue":
		return shmkit.WorkQueue, nil
	}
	return 0, fmt.Errorf("invalid --pattern %q (want pubsub or workqueue)", s)
}

func parsePolicy(s string) (shmkit.Policy, error) {
	switch strings.ToLower(s) {
	case "block":
		return shmkit.Block, nil
	case "drop-newest":
		return shmkit.DropNewest, nil
	case "drop-oldest":
		return shmkit.DropOldest, nil
	}
	return 0, fmt.Errorf("invalid --policy %q (want block, drop-newest or drop-oldest)", s)
}

// chanCreateOut is `shmctl create --channel NAME -o json`.
type chanCreateOut struct {
	Name    string     `json:"name"`
	Backend string     `json:"backend"`
	Pattern string     `json:"pattern"`
	Policy  string     `json:"policy"`
	Keep    bool       `json:"keep"`
	Limits  chanLimits `json:"limits"`
	Tap     struct {
		Slots int `json:"slots"`
		Snap  int `json:"snap"`
	} `json:"tap"`
	LivenessInterval string `json:"liveness_interval"`
	Mode             string `json:"mode"`
	Group            string `json:"group,omitempty"`
}

// createChannel makes channel name, kept until shmctl rm, and reports it.
func createChannel(w io.Writer, name string, b shmkit.Backend, f *chanCreateFlags, output string) error {
	cfg, err := f.config(b)
	if err != nil {
		return err
	}
	ch, err := shmkit.Create(name, cfg)
	if err != nil {
		return err
	}
	c := ch.Config()
	if err := ch.Close(); err != nil {
		return err
	}
	out := chanCreateOut{Name: name, Backend: c.Backend.String(), Pattern: c.Pattern.String(), Policy: c.Policy.String(), Keep: c.Keep,
		Limits: chanLimits{MaxMessage: c.MaxMessage, RingDepth: c.RingDepth, MaxPublishers: c.MaxPublishers,
			MaxSubscribers: c.MaxSubscribers, MaxProcesses: c.MaxProcesses, ChunksPerClass: c.ChunksPerClass},
		LivenessInterval: c.LivenessInterval.String(), Group: c.Group}
	out.Mode = "0600"
	if c.Mode != 0 {
		out.Mode = fmt.Sprintf("%04o", uint32(c.Mode.Perm()))
	}
	out.Tap.Slots, out.Tap.Snap = c.TapSlots, c.TapSnap
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	depth := "queue slots" // a work queue's ring
	if c.Pattern == shmkit.PubSub {
		depth = "ring depth (sizes each publisher's log)"
	}
	_, err = fmt.Fprintf(w, "created channel %s (%v, %s, policy %s): messages up to %d bytes, %s %d, %d publishers, %d subscribers; kept until shmctl rm %s\n",
		name, c.Backend, c.Pattern, c.Policy, c.MaxMessage, depth, c.RingDepth, c.MaxPublishers, c.MaxSubscribers, name)
	return err
}
