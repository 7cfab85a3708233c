//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/internal/reexec"
)

// crashChildName is a benchmark child whose sending end exits the process
// abruptly (status 9, no report) before its 51st message.
const crashChildName = "shmkit-bench-crash"

func registerTestChildren() {
	reexec.Register(crashChildName, func() int {
		c, err := childSetup()
		if err != nil {
			return 2
		}
		st, per, err := childRole(&c, func(e ends) ends {
			e.out = &crashingOut{outEnd: e.out, left: 50}
			return e
		})
		return report(st, per, err)
	})
}

// crashingOut exits the process before its limit+1st send.
type crashingOut struct {
	outEnd
	left int
}

func (c *crashingOut) send(n int) error {
	if c.left == 0 {
		os.Exit(9)
	}
	c.left--
	return c.outEnd.send(n)
}

// quick is a configuration for tests: short cells that still move a few
// hundred verified messages each.
func quick() Config {
	return Config{
		Duration: time.Millisecond,
		Warmup:   time.Millisecond,
		MinMsgs:  200,
		NoLimits: true,
		Scaling:  []int{1, 3},
	}
}

// naReason says why transport may legitimately be n/a at size on this
// machine, or "" if it must run.
func naReason(transport string, size int) string {
	switch {
	case transport == "posixmq":
		if max, err := procInt(procMQMsgSizeMax); err == nil && size > max {
			return "msgsize_max"
		}
	case transport == "sysvmsg":
		if max, err := procInt(procMsgMax); err == nil && size > max {
			return "msgmax"
		}
	case transport == "seqpacket":
		if wmem, err := procInt(procWmemMax); err == nil && 2*size+64<<10 > wmem {
			return "wmem_max"
		}
	}
	return ""
}

// TestEveryTransportDeliversIntact runs every transport, every waiting
// mode and every workload on a small count of messages at a small size and
// at one above the chunked-copy size, and checks that each cell ran (or
// is n/a for the documented kernel limit), delivered at least the asked
// count, and checksummed what it should.
func TestEveryTransportDeliversIntact(t *testing.T) {
	cfg := quick()
	cfg.Sizes = []int{100}
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Above the chunked-copy size: the transports whose path changes there.
	big := quick()
	big.Sizes = []int{chunk + 1000}
	big.Transports = []string{"spsc", "spsc-zc", "bytering", "bytering-zc", "mpmc", "pipe", "seqpacket", "posixmq"}
	big.Waits = []futex.Strategy{futex.SpinThenPark}
	big.Workloads = []string{Stream, PingPong}
	more, err := Run(context.Background(), big)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 + len(cfg.Scaling) // harness, scaling
	for _, name := range Transports() {
		rows := 1
		if transports[name].waits() {
			rows = len(DefaultWaits())
		}
		want += rows + 1 // stream, verify (one waiting mode)
		if !streamOnly(transports[name]) {
			want += rows // pingpong
		}
	}
	if len(results) != want {
		t.Fatalf("%d results, want %d", len(results), want)
	}
	if want := 2 + 3*len(big.Transports); len(more) != want { // one waiting mode
		t.Fatalf("%d results at %d bytes, want %d", len(more), big.Sizes[0], want)
	}
	results = append(results, more...)
	seen := map[string]bool{}
	for _, r := range results {
		base := strings.SplitN(r.Transport, "/", 2)[0]
		seen[base] = true
		name := r.Workload + " " + r.Transport + " " + SizeName(r.Size)
		if why := naReason(base, r.Size); why != "" {
			if !r.NA() || !strings.Contains(r.Error, why) {
				t.Errorf("%s: want n/a naming %s, got %q", name, why, r.Error)
			}
			continue
		}
		if !r.OK() {
			t.Errorf("%s: %s", name, r.Error)
			continue
		}
		if r.Family == "" {
			t.Errorf("%s: no family", name)
		}
		if r.Msgs < int64(cfg.MinMsgs) {
			t.Errorf("%s: %d measured messages, want at least %d", name, r.Msgs, cfg.MinMsgs)
		}
		switch r.Workload {
		case Verify:
			// Both sides checksum every message (the parent its measured
			// and unmeasured ones alike).
			if r.Summed < 2*r.Msgs {
				t.Errorf("%s: %d checksums for %d messages", name, r.Summed, r.Msgs)
			}
			if r.MsgsPerSec != 0 || r.P50 != nil {
				t.Errorf("%s: a verification cell reports timing", name)
			}
			continue
		case Scaling:
			if r.Senders == 0 || r.Senders != r.Receivers {
				t.Errorf("%s: %d senders, %d receivers", name, r.Senders, r.Receivers)
			}
		}
		if r.Summed < r.Msgs/SampleEvery {
			t.Errorf("%s: %d messages checksummed of %d", name, r.Summed, r.Msgs)
		}
		if r.MsgsPerSec <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: rate %v over %vs", name, r.MsgsPerSec, r.Seconds)
		}
		if (r.Workload == PingPong) != (r.P50 != nil) {
			t.Errorf("%s: latency present %v", name, r.P50 != nil)
		}
		if r.P50 != nil && (*r.P50 <= 0 || *r.P99 < *r.P50 || *r.P999 < *r.P99 || *r.Max < *r.P999) {
			t.Errorf("%s: percentiles p50 %d p99 %d p99.9 %d max %d", name, *r.P50, *r.P99, *r.P999, *r.Max)
		}
		if r.Family == FamilyShmkit || r.Family == FamilyOS {
			if r.CPUChildNsPerMsg <= 0 {
				t.Errorf("%s: no child CPU time", name)
			}
			if r.Workload != Scaling && r.HarnessNsPerMsg == nil {
				t.Errorf("%s: no harness cost", name)
			}
		}
	}
	for _, k := range append(Transports(), "harness") {
		if !seen[k] {
			t.Errorf("transport %s missing", k)
		}
	}
}

// TestFixedRate paces a stream and checks that it reports one-way
// latencies and about the asked rate at most.
func TestFixedRate(t *testing.T) {
	cfg := quick()
	cfg.Sizes = []int{64}
	cfg.Transports = []string{"spsc", "pipe"}
	cfg.Waits = []futex.Strategy{futex.SpinThenPark}
	cfg.Workloads = []string{Stream}
	cfg.Rate = 20000
	cfg.Duration = 20 * time.Millisecond
	cfg.NoVerify = true
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("%s: %s", r.Transport, r.Error)
			continue
		}
		if r.Family == FamilyHarness {
			continue // unpaced
		}
		if r.P50 == nil || *r.P50 <= 0 || *r.Max < *r.P50 {
			t.Errorf("%s: no one-way latency at a fixed rate: %+v", r.Transport, r)
		}
		if r.MsgsPerSec > 2*cfg.Rate {
			t.Errorf("%s: %v msgs/s at a rate of %v", r.Transport, r.MsgsPerSec, cfg.Rate)
		}
		if r.Rate != cfg.Rate {
			t.Errorf("%s: rate %v", r.Transport, r.Rate)
		}
		if r.VsPipe == nil || (r.Transport == "pipe" && *r.VsPipe != 1) {
			t.Errorf("%s: vs pipe %v", r.Transport, r.VsPipe)
		}
	}
}

// TestLimitsAndRatios runs the probes with the pipe and one ring and
// checks the limit rows and the ratio columns.
func TestLimitsAndRatios(t *testing.T) {
	cfg := quick()
	cfg.NoLimits = false
	cfg.Sizes = []int{64}
	cfg.Transports = []string{"pipe", "spsc"}
	cfg.Waits = []futex.Strategy{futex.SpinThenPark}
	cfg.Workloads = []string{Stream, PingPong}
	var calls []string
	cfg.Progress = func(done, total int, cell string) { calls = append(calls, cell) }
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != Cells(cfg)+1 {
		t.Errorf("progress called %d times for %d steps", len(calls), Cells(cfg))
	}
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Workload+" "+r.Transport] = r
	}
	for _, name := range []string{"stream " + LimitMemcpy, "pingpong " + LimitSyscall, "pingpong " + LimitFutex,
		"stream " + Harness, "pingpong " + Harness} {
		r, ok := byName[name]
		if !ok || !r.OK() || r.MsgsPerSec <= 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if h := byName["pingpong "+Harness]; h.Clock == "" || h.ClockNs <= 0 {
		t.Errorf("harness row names no clock: %+v", h)
	}
	if r := byName["pingpong "+LimitAtomic]; !r.OK() && !r.NA() {
		t.Errorf("atomic probe: %s", r.Error)
	}
	for _, wl := range []string{Stream, PingPong} {
		p := byName[wl+" pipe"]
		if p.VsPipe == nil || *p.VsPipe != 1 {
			t.Errorf("%s pipe: vs pipe %v, want 1", wl, p.VsPipe)
		}
		if p.Runs != 3 || p.Spread < 1 {
			t.Errorf("%s pipe: %d runs, spread %v; want the median of 3", wl, p.Runs, p.Spread)
		}
		s := byName[wl+" spsc/spin-then-park"]
		if !s.OK() || s.VsPipe == nil || s.HarnessNsPerMsg == nil {
			t.Errorf("%s spsc: %+v", wl, s)
		}
		if wl == Stream && s.VsLimit == nil {
			t.Errorf("stream spsc: no vs limit")
		}
	}
	if i := slices.IndexFunc(results, func(r Result) bool { return !r.IsLimit() }); i < 4 {
		t.Errorf("limit rows not first: first cell at %d", i)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Sizes: []int{MinSize - 1}},
		{Transports: []string{"carrier-pigeon"}},
		{Workloads: []string{"bulk"}},
		{CPUs: []int{0}},
		{Scaling: []int{0}},
		{Rate: -1},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
}

// TestChildFailureIsReported makes the child fail (it is told of no
// descriptor, so it cannot attach) and checks the cell reports it instead
// of hanging.
func TestChildFailureIsReported(t *testing.T) {
	c := cell{Transport: "spsc", Wait: "spin-then-park", Workload: Stream, Size: 64,
		Warmup: time.Millisecond, Duration: time.Millisecond, MinMsgs: 10, CPU: -1, Timeout: 10 * time.Second}
	l, err := transports["spsc"].open(&c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.doRelease()
	start := time.Now()
	_, _, err = runWithChild(context.Background(), c, l.files, l.doAbort, func() (sideStats, error) {
		co := newConsumer(l.in, paceOf(&c))
		err := runRole(co)
		return co.st, err
	})
	if err == nil || !strings.Contains(err.Error(), "needs one descriptor") {
		t.Fatalf("got %v, want the child's attach error", err)
	}
	t.Logf("reported after %v", time.Since(start)) // returning at all is the point: no hang
}

// TestDeadChildIsReported kills the child (it exits abruptly after 50
// sends) on every way a parent can be blocked: end-of-file on a pipe, a
// FIFO and a socket, a ring closed under a spinning or parked reader, a
// POSIX queue poisoned, a SysV queue removed. The cell must fail, not hang.
func TestDeadChildIsReported(t *testing.T) {
	cases := []struct{ transport, wait string }{
		{"pipe", ""}, {"fifo", ""}, {"unix", ""}, {"posixmq", ""}, {"sysvmsg", ""},
		{"spsc", "spin"}, {"spsc-zc", "park"}, {"bytering", "park"}, {"mpmc", "spin-then-park"},
	}
	for _, tc := range cases {
		for _, wl := range []string{Stream, PingPong} {
			c := cell{Transport: tc.transport, Wait: tc.wait, Workload: wl, Size: 64,
				Warmup: time.Hour, Duration: time.Hour, MinMsgs: 10, CPU: -1, Timeout: 20 * time.Second,
				child: crashChildName}
			start := time.Now()
			res := runCell(context.Background(), c, -1)
			if res.OK() || !strings.Contains(res.Error, "exit status 9") {
				t.Errorf("%s %s: got error %q, want the child's exit status 9", wl, c.row(), res.Error)
			}
			// Returning at all is the point (no hang); the time is logged,
			// never asserted.
			t.Logf("%s %s (%v): %s", wl, c.row(), time.Since(start).Round(time.Millisecond), res.Error)
		}
	}
}

// TestOrphanChildExits starts a child that waits for pings which never
// come, then closes its standard input as a dying parent would: the child
// must exit (status 3) instead of waiting for ever.
func TestOrphanChildExits(t *testing.T) {
	c := cell{Transport: "spsc", Wait: "park", Workload: PingPong, Size: 64,
		Warmup: time.Millisecond, Duration: time.Millisecond, MinMsgs: 1, CPU: -1, Timeout: time.Hour}
	l, err := transports["spsc"].open(&c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.doRelease()
	c.Files = len(l.files)
	env, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := reexec.Command(childName, nil, envCell+"="+string(env))
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = l.files
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range l.files {
		f.Close()
	}
	stdin.Close() // whether the child is still starting or already parked
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("child ended with %v, want exit status 3", err)
		}
	case <-time.After(time.Minute): // a hang detector, not a speed check
		cmd.Process.Kill()
		<-done
		t.Fatal("orphaned child still running after a minute")
	}
}

// TestHarnessCost checks that the harness runs over the no-op transport
// and checks what it should.
func TestHarnessCost(t *testing.T) {
	for _, wl := range []string{Stream, PingPong} {
		for _, size := range []int{MinSize, 64, 1 << 20} {
			c := cell{Workload: wl, Size: size, Warmup: time.Nanosecond, Duration: time.Nanosecond, MinMsgs: 3 * SampleEvery}
			st, err := harnessCost(&c)
			if err != nil {
				t.Fatalf("%s %d: %v", wl, size, err)
			}
			if st.msgs < int64(c.MinMsgs) || st.summed < 3 || st.elapsed <= 0 {
				t.Errorf("%s %d: %+v", wl, size, st)
			}
		}
	}
}
