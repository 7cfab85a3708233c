//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// quick is a configuration for tests: short cells that still move a few
// hundred verified messages each.
func quick() Config {
	return Config{
		Duration: time.Millisecond,
		Warmup:   time.Millisecond,
		MinMsgs:  200,
		NoLimits: true,
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
// mode and both workloads on a small count of messages at a small size and
// at one above the full-checksum limit, and checks that each cell ran (or
// is n/a for the documented kernel limit), delivered at least the asked
// count, and verified messages whole.
func TestEveryTransportDeliversIntact(t *testing.T) {
	cfg := quick()
	cfg.Sizes = []int{100, FullCheckLimit + 1000}
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * 2 * (len(RingKinds)*len(AllWaits) + len(OSKinds) + len(RefKinds))
	if len(results) != want {
		t.Fatalf("%d results, want %d", len(results), want)
	}
	seen := map[string]bool{}
	for _, r := range results {
		seen[strings.SplitN(r.Transport, "/", 2)[0]] = true
		name := r.Workload + " " + r.Transport + " " + SizeName(r.Size)
		if why := naReason(r.Transport, r.Size); why != "" {
			if !r.NA() || !strings.Contains(r.Error, why) {
				t.Errorf("%s: want n/a naming %s, got %q", name, why, r.Error)
			}
			continue
		}
		if !r.OK() {
			t.Errorf("%s: %s", name, r.Error)
			continue
		}
		if r.Msgs < int64(cfg.MinMsgs) {
			t.Errorf("%s: %d measured messages, want at least %d", name, r.Msgs, cfg.MinMsgs)
		}
		if r.Verified < r.Msgs/SampleEvery {
			t.Errorf("%s: %d messages verified whole of %d", name, r.Verified, r.Msgs)
		}
		if r.MsgsPerSec <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: rate %v over %vs", name, r.MsgsPerSec, r.Seconds)
		}
		if (r.Workload == PingPong) != (r.P50 != nil) {
			t.Errorf("%s: latency present %v", name, r.P50 != nil)
		}
		if r.P50 != nil && (*r.P50 <= 0 || *r.P99 < *r.P50 || *r.Max < *r.P99) {
			t.Errorf("%s: percentiles p50 %d p99 %d max %d", name, *r.P50, *r.P99, *r.Max)
		}
		if r.Transport != "chan" && r.CPUChildNsPerMsg <= 0 {
			t.Errorf("%s: no child CPU time", name)
		}
	}
	for _, k := range AllKinds() {
		if !seen[k] {
			t.Errorf("transport %s missing", k)
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
	cfg.Waits = AllWaits[2:]
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
	for _, name := range []string{"stream " + LimitMemcpy, "pingpong " + LimitSyscall, "pingpong " + LimitFutex} {
		r, ok := byName[name]
		if !ok || !r.OK() || r.MsgsPerSec <= 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := byName["pingpong "+LimitAtomic]; !r.OK() && !r.NA() {
		t.Errorf("atomic probe: %s", r.Error)
	}
	for _, wl := range []string{Stream, PingPong} {
		p := byName[wl+" pipe"]
		if p.VsPipe == nil || *p.VsPipe != 1 {
			t.Errorf("%s pipe: vs pipe %v, want 1", wl, p.VsPipe)
		}
		s := byName[wl+" spsc/spin-then-park"]
		if !s.OK() || s.VsPipe == nil {
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
		{Sizes: []int{4}},
		{Transports: []string{"carrier-pigeon"}},
		{Workloads: []string{"bulk"}},
		{CPUs: []int{0}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestChildFailureIsReported makes the child fail (a corrupt spec it
// cannot attach) and checks the cell reports it instead of hanging.
func TestChildFailureIsReported(t *testing.T) {
	spec := cellSpec{Kind: "spsc", Wait: "spin-then-park", Workload: Stream, Size: 64,
		Warmup: time.Millisecond, Duration: time.Millisecond, MinMsgs: 10, CPU: -1, Timeout: 10 * time.Second}
	l, err := openLink(&spec)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	spec.Offsets = []int{0, 1} // not page aligned: the child refuses
	start := time.Now()
	_, _, err = runWithChild(context.Background(), spec, l.files, l.abort, func() (sideStats, error) {
		return consume(l.up, spec.Size)
	})
	if err == nil || !strings.Contains(err.Error(), "ring offset") {
		t.Fatalf("got %v, want the child's attach error", err)
	}
	t.Logf("reported after %v", time.Since(start)) // returning at all is the point: no hang
}

// TestDeadChildIsReported kills the child (it exits abruptly after 50
// sends) on every way a parent can be blocked: end-of-file on a pipe, a
// FIFO and a socket, a ring closed under a spinning or parked reader, a
// POSIX queue poisoned, a SysV queue removed. The cell must fail, not hang.
func TestDeadChildIsReported(t *testing.T) {
	cases := []struct{ kind, wait string }{
		{"pipe", ""}, {"fifo", ""}, {"unix", ""}, {"posixmq", ""}, {"sysvmsg", ""},
		{"spsc", "spin"}, {"bytering", "park"}, {"mpmc", "spin-then-park"},
	}
	for _, c := range cases {
		for _, wl := range []string{Stream, PingPong} {
			spec := cellSpec{Kind: c.kind, Wait: c.wait, Workload: wl, Size: 64,
				Warmup: time.Hour, Duration: time.Hour, MinMsgs: 10, CPU: -1, Timeout: 20 * time.Second,
				CrashAfter: 50}
			start := time.Now()
			res := runCell(context.Background(), c.kind, spec, -1)
			if res.OK() || !strings.Contains(res.Error, "exit status 9") {
				t.Errorf("%s %s/%s: got error %q, want the child's exit status 9", wl, c.kind, c.wait, res.Error)
			}
			// Returning at all is the point (no hang); the time is logged,
			// never asserted.
			t.Logf("%s %s/%s (%v): %s", wl, c.kind, c.wait, time.Since(start).Round(time.Millisecond), res.Error)
		}
	}
}

// TestOrphanChildExits starts a child that waits for pings which never
// come, then closes its standard input as a dying parent would: the child
// must exit (status 3) instead of waiting for ever.
func TestOrphanChildExits(t *testing.T) {
	spec := cellSpec{Kind: "spsc", Wait: "park", Workload: PingPong, Size: 64,
		Warmup: time.Millisecond, Duration: time.Millisecond, MinMsgs: 1, CPU: -1, Timeout: time.Hour}
	l, err := openLink(&spec)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	env, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), EnvChild+"="+string(env))
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
	time.Sleep(50 * time.Millisecond) // let it attach and park
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("child ended with %v, want exit status 3", err)
		}
	case <-time.After(time.Minute): // a hang detector, not a speed check
		cmd.Process.Kill()
		<-done
		t.Fatal("orphaned child still running after a minute")
	}
}
