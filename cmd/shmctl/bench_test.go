//go:build linux

package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/bench"
)

// runBenchCmd runs a fresh `shmctl bench` with args and returns its
// standard output. The cells' children are this test binary: bench.go's
// init turns it into a child when it was started as one.
func runBenchCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newBenchCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// small is a tiny run: two transports, one size, no probes, no
// verification or scaling cells.
var small = []string{"--sizes", "64", "--transports", "pipe,spsc", "--wait", "spin-then-park",
	"--workloads", "stream,pingpong", "--no-verify",
	"--duration", "2ms", "--warmup", "1ms", "--min-msgs", "20", "--no-limits", "--progress", "never"}

func TestBenchJSON(t *testing.T) {
	out, err := runBenchCmd(t, append(small, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rs []bench.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rs) != 6 {
		t.Fatalf("%d results, want 6 (the harness and 2 transports x 2 workloads)", len(rs))
	}
	for _, r := range rs {
		if !r.OK() || r.MsgsPerSec <= 0 || r.Msgs < 20 {
			t.Errorf("%s %s: %+v", r.Workload, r.Transport, r)
		}
		if r.Family != bench.FamilyHarness && r.HarnessNsPerMsg == nil {
			t.Errorf("%s %s: no harness cost", r.Workload, r.Transport)
		}
		if r.Workload == bench.PingPong && (r.P999 == nil || r.Max == nil) {
			t.Errorf("%s %s: no p99.9 or max", r.Workload, r.Transport)
		}
	}
}

func TestBenchFrom(t *testing.T) {
	out, err := runBenchCmd(t, append(small, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(saved, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := runBenchCmd(t, "--from", saved, "--progress", "never")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "spsc/spin-then-park") || !strings.Contains(table, "harness alone") {
		t.Errorf("table from %s:\n%s", saved, table)
	}
	if _, err := runBenchCmd(t, "--from", filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Errorf("--from a missing file: no error")
	}
}

func TestBenchCSVAndPlot(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "bench.svg")
	out, err := runBenchCmd(t, append(small, "--csv", "--plot", plot)...)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 7 || rows[0][0] != "transport" {
		t.Fatalf("csv: %v, %d rows:\n%s", err, len(rows), out)
	}
	if b, err := os.ReadFile(plot); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("plot: %v", err)
	}
}

func TestBenchTableAndBenchfmt(t *testing.T) {
	out, err := runBenchCmd(t, small...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"streaming", "ping-pong", "x pipe", "spsc/spin-then-park", "pipe", "load average",
		"harness alone", "per round trip"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, err = runBenchCmd(t, append(small, "--benchfmt")...)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^BenchmarkIPC/workload=(stream|pingpong)/transport=\S+/size=64B-\d+\t\d+\t[0-9.]+ ns/op`)
	if n := len(line.FindAllString(out, -1)); n != 6 {
		t.Errorf("%d benchmark lines, want 6:\n%s", n, out)
	}
}

func TestBenchScalingAndVerify(t *testing.T) {
	out, err := runBenchCmd(t, "--sizes", "64", "--transports", "mpmc", "--wait", "park", "--scaling", "1,2",
		"--duration", "2ms", "--warmup", "1ms", "--min-msgs", "20", "--no-limits", "--progress", "never")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scaling: one MPMC ring", "mpmc/1x1", "mpmc/2x2", "verification", "0 cells failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--sizes", "4"},
		{"--scaling", "0"},
		{"--scaling", "x"},
		{"--rate", "-5"},
		{"--sizes", "lots"},
		{"--transports", "carrier-pigeon"},
		{"--wait", "nap"},
		{"--cpus", "1"},
		{"--json", "--csv"},
		{"--plot", "out.jpg"},
		{"--progress", "sometimes"},
		{"--duration", "0s"},
		{"extra-argument"},
	} {
		if _, err := runBenchCmd(t, append([]string{"--no-limits", "--transports", "pipe"}, args...)...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
