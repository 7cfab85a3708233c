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
// init turns it into a child when bench.EnvChild is set.
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

// small is a tiny run: two transports, one size, no probes.
var small = []string{"--sizes", "64", "--transports", "pipe,spsc", "--wait", "spin-then-park",
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
	if len(rs) != 4 {
		t.Fatalf("%d results, want 4 (2 transports x 2 workloads)", len(rs))
	}
	for _, r := range rs {
		if !r.OK() || r.MsgsPerSec <= 0 || r.Msgs < 20 {
			t.Errorf("%s %s: %+v", r.Workload, r.Transport, r)
		}
	}
}

func TestBenchCSVAndPlot(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "bench.svg")
	out, err := runBenchCmd(t, append(small, "--csv", "--plot", plot)...)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "transport" {
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
	for _, want := range []string{"streaming", "ping-pong", "x pipe", "spsc/spin-then-park", "pipe", "load average"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, err = runBenchCmd(t, append(small, "--benchfmt")...)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^BenchmarkIPC/workload=(stream|pingpong)/transport=\S+/size=64B-\d+\t\d+\t[0-9.]+ ns/op`)
	if n := len(line.FindAllString(out, -1)); n != 4 {
		t.Errorf("%d benchmark lines, want 4:\n%s", n, out)
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--sizes", "4"},
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
