package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// chanCollector exports every channel's counters at scrape time: it lists
// the segments (segment.List) and reads each channel with shmkit.Inspect,
// so channels appear and disappear as they are created and removed. It is
// an unchecked collector (Describe sends nothing) because the set of
// series changes with the channels.
type chanCollector struct {
	dirs []string
}

var (
	mInfo = prometheus.NewDesc("shmkit_channel_info", "A channel: its pattern and policy (value 1).",
		[]string{"channel", "backend", "pattern", "policy"}, nil)
	mDepth = prometheus.NewDesc("shmkit_channel_ring_depth", "RingDepth: records of 256 bytes each publisher's log holds (pub/sub), or the work queue's slots.",
		[]string{"channel", "backend"}, nil)
	mRingLen = prometheus.NewDesc("shmkit_ring_occupancy", "Messages not yet released: per subscriber slot in all logs (pub/sub), or queued (work queue, ring 0).",
		[]string{"channel", "backend", "ring"}, nil)
	mParts = prometheus.NewDesc("shmkit_channel_participants", "Participant slots in use, by role.",
		[]string{"channel", "backend", "role"}, nil)
	pLabels = []string{"channel", "backend", "slot", "role", "pid"}
	mMsgs   = prometheus.NewDesc("shmkit_participant_messages_total", "Messages published or received.", pLabels, nil)
	mBytes  = prometheus.NewDesc("shmkit_participant_bytes_total", "Payload bytes published or received.", pLabels, nil)
	mDrops  = prometheus.NewDesc("shmkit_participant_drops_total", "Deliveries a publisher dropped.", pLabels, nil)
	mMissed = prometheus.NewDesc("shmkit_participant_missed_total", "A subscriber's messages that publishers dropped.", pLabels, nil)
	mBlock  = prometheus.NewDesc("shmkit_participant_blocked_seconds_total", "Time spent waiting in Publish or Receive.", pLabels, nil)
	mAlive  = prometheus.NewDesc("shmkit_participant_alive", "1 if the participant's process (pid and start time) is alive.", pLabels, nil)
	rLabels = []string{"channel", "backend", "slot", "role", "pid", "kind"}
	tLabels = []string{"channel", "backend", "tap", "pid"}
	mRMsgs  = prometheus.NewDesc("shmkit_relay_messages_total",
		"Messages a relay (e.g. a NATS bridge) handed to its far side (subscriber) or took from it (publisher).", rLabels, nil)
	mRBytes = prometheus.NewDesc("shmkit_relay_bytes_total", "Payload bytes a relay handed to or took from its far side.", rLabels, nil)
	mRDrops = prometheus.NewDesc("shmkit_relay_drops_total", "Messages a relay counted as dropped on its far side.", rLabels, nil)
	mRRecon = prometheus.NewDesc("shmkit_relay_reconnects_total", "Reconnects of a relay to its far side.", rLabels, nil)
	mRLag   = prometheus.NewDesc("shmkit_relay_lag",
		"Messages a relay has in flight unconfirmed by its far side (out), or waiting there for it (in).", rLabels, nil)
	cLabels    = []string{"channel", "backend", "class"}
	mTapRecv   = prometheus.NewDesc("shmkit_tap_received_total", "Messages an attached tap (shmctl tap) read whole.", tLabels, nil)
	mTapMissed = prometheus.NewDesc("shmkit_tap_missed_total",
		"Messages an attached tap lost (it fell a whole tap ring behind, or a copy was torn or never written).", tLabels, nil)
	mTapAlive = prometheus.NewDesc("shmkit_tap_alive", "1 if the tap's process (pid and start time) is alive.", tLabels, nil)
	mChunks   = prometheus.NewDesc("shmkit_pool_chunks", "Pool chunks of a size class, by state.",
		[]string{"channel", "backend", "class", "state"}, nil)
	mFailed = prometheus.NewDesc("shmkit_pool_failed_total", "Loans that found their size class empty.", cLabels, nil)
	mErrors = prometheus.NewDesc("shmkit_channel_read_errors", "1 if the last read of a channel found a problem (corrupt entry).",
		[]string{"channel", "backend"}, nil)
)

func (c chanCollector) Describe(chan<- *prometheus.Desc) {}

var (
	mChannels = prometheus.NewDesc("shmkit_channels", "Channels found (and read) at this scrape.", nil, nil)
	mBuild    = prometheus.NewDesc("shmkit_build_info", "shmctl's build: its module version and Go version (value 1).",
		[]string{"version", "goversion"}, nil)
)

func (c chanCollector) Collect(ch chan<- prometheus.Metric) {
	infos, _ := segment.List(c.dirs...)
	n := 0
	defer func() {
		ch <- prometheus.MustNewConstMetric(mChannels, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(mBuild, prometheus.GaugeValue, 1, buildVersion(), runtime.Version())
	}()
	for _, info := range infos {
		if info.Err != nil || info.Backend == segment.Memfd {
			continue
		}
		found := false
		for _, r := range info.Regions {
			found = found || r.Name == "chan"
		}
		if !found {
			continue
		}
		name := info.Name
		if info.Backend == segment.File {
			name = info.Path
		}
		s, err := readChannel(info.Backend, name)
		if err != nil {
			// Removed meanwhile, or not readable: it simply is not there.
			continue
		}
		n++
		collectChannel(ch, s)
	}
}

func collectChannel(ch chan<- prometheus.Metric, s chanSnapshot) {
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	ctr := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	n, b := s.Name, s.Backend
	g(mInfo, 1, n, b, s.Pattern, s.Policy)
	g(mDepth, float64(s.Limits.RingDepth), n, b)
	bad := 0.0
	if s.Warning != "" {
		bad = 1
	}
	g(mErrors, bad, n, b)
	roles := map[string]int{}
	for _, p := range s.Participants {
		roles[string(p.Role)]++
		l := []string{n, b, strconv.Itoa(p.Slot), string(p.Role), strconv.Itoa(p.PID)}
		ctr(mMsgs, float64(p.Messages), l...)
		ctr(mBytes, float64(p.Bytes), l...)
		ctr(mDrops, float64(p.Drops), l...)
		ctr(mMissed, float64(p.Missed), l...)
		ctr(mBlock, float64(p.BlockedNs)/1e9, l...)
		alive := 0.0
		if p.Alive {
			alive = 1
		}
		g(mAlive, alive, l...)
		if r := p.Relay; r != nil {
			rl := append(l[:len(l):len(l)], r.Kind)
			ctr(mRMsgs, float64(r.Messages), rl...)
			ctr(mRBytes, float64(r.Bytes), rl...)
			ctr(mRDrops, float64(r.Drops), rl...)
			ctr(mRRecon, float64(r.Reconnects), rl...)
			g(mRLag, float64(r.Lag), rl...)
		}
	}
	for _, t := range s.Taps {
		l := []string{n, b, strconv.Itoa(t.Slot), strconv.Itoa(t.PID)}
		ctr(mTapRecv, float64(t.Received), l...)
		ctr(mTapMissed, float64(t.Missed), l...)
		alive := 0.0
		if t.Alive {
			alive = 1
		}
		g(mTapAlive, alive, l...)
	}
	for role, k := range roles {
		g(mParts, float64(k), n, b, role)
	}
	for _, r := range s.Rings {
		g(mRingLen, float64(r.Len), n, b, strconv.Itoa(r.Ring))
	}
	for _, c := range s.Pool.Classes {
		cl := strconv.Itoa(c.Size)
		g(mChunks, float64(c.Free), n, b, cl, "free")
		g(mChunks, float64(c.InUse), n, b, cl, "in_use")
		g(mChunks, float64(c.InFlight), n, b, cl, "in_flight")
		g(mChunks, float64(c.Cached), n, b, cl, "cached")
		ctr(mFailed, float64(c.Failed), n, b, cl)
	}
}

// buildVersion is the shmkit module's version shmctl was built from
// ("(devel)" for a build in the repository).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

func init() {
	var (
		listen string
		dirs   []string
	)
	cmd := &cobra.Command{
		Use:   "metrics [--listen 127.0.0.1:9464] [--dir DIR]...",
		Short: "Serve every channel's counters on /metrics in the Prometheus exposition format",
		Long: `metrics serves every channel's counters (read at each scrape, so channels
appear and disappear as they are created and removed) on /metrics, plus
shmkit_channels (how many were found), shmkit_build_info{version,goversion}
and the standard process_* and go_* collectors: the page is never empty,
even with no channel.`,
		Example: `  shmctl metrics
  shmctl metrics --listen 0.0.0.0:9464 --dir /var/lib/app/shm`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return fmt.Errorf("invalid --listen %q (want host:port)", listen)
			}
			reg := prometheus.NewRegistry()
			for _, c := range []prometheus.Collector{chanCollector{dirs: dirs},
				collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector()} {
				if err := reg.Register(c); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving http://%s/metrics\n", ln.Addr())
			mux := http.NewServeMux()
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
			err = http.Serve(ln, mux)
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9464", "address to serve /metrics on")
	cmd.Flags().StringArrayVar(&dirs, "dir", nil, "also list file-backend segments in DIR (repeatable)")
	_ = cmd.MarkFlagDirname("dir")
	rootCmd.AddCommand(cmd)
}
