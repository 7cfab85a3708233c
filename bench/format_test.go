package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sample returns results of every shape: a stream cell, a ping-pong cell,
// limit rows and an n/a cell.
func sample() []Result {
	pipeS := Result{Transport: "pipe", Workload: Stream, Size: 64}
	pipeS.setRate(1000, 1e9)
	pipeS.setCPU(2e6, 1e6)
	ringS := Result{Transport: "spsc/spin", Workload: Stream, Size: 64, Wait: "spin"}
	ringS.setRate(20000, 1e9)
	memcpy := Result{Transport: LimitMemcpy, Family: FamilyLimit, Workload: Stream, Size: 64}
	memcpy.setRate(100000, 1e9)
	pipeP := Result{Transport: "pipe", Workload: PingPong, Size: 64}
	pipeP.setRate(100, 1e9)
	pipeP.setLatency(10000, 12000, 20000, 30000, 40000)
	ringP := Result{Transport: "spsc/spin", Workload: PingPong, Size: 64, Wait: "spin"}
	ringP.setRate(1000, 1e9)
	ringP.setLatency(500, 600, 900, 1000, 5000)
	atomic := Result{Transport: LimitAtomic, Family: FamilyLimit, Workload: PingPong, Size: 8}
	atomic.setRate(1000, 1e6)
	atomic.setLatency(100, 110, 120, 130, 140)
	na := Result{Transport: "posixmq", Workload: Stream, Size: 1 << 20, Error: "n/a: POSIX mq msgsize_max is 8192 bytes"}
	rs := []Result{memcpy, pipeS, ringS, na, atomic, pipeP, ringP}
	AddRatios(rs)
	return rs
}

func TestAddRatios(t *testing.T) {
	rs := sample()
	if v := rs[2].VsPipe; v == nil || *v != 20 {
		t.Errorf("stream ring vs pipe %v, want 20", v)
	}
	if v := rs[2].VsLimit; v == nil || *v != 0.2 {
		t.Errorf("stream ring vs limit %v, want 0.2", v)
	}
	if v := rs[6].VsPipe; v == nil || *v != 20 {
		t.Errorf("ping-pong ring vs pipe %v, want 20", v)
	}
	// limit: atomic 100 ns + two copies of 64 B at 6.4 MB/s (10 µs each).
	if v := rs[6].VsLimit; v == nil || *v < 40.19 || *v > 40.21 {
		t.Errorf("ping-pong ring vs limit %v, want 40.2", v)
	}
	// With a Min, the atomic floor is the Min, not the p50.
	rs[4].Min = ptr(int64(50))
	AddRatios(rs)
	if v := rs[6].VsLimit; v == nil || *v < 40.09 || *v > 40.11 {
		t.Errorf("ping-pong ring vs limit with the atomic min %v, want 40.1", v)
	}
	if rs[3].VsPipe != nil || rs[0].VsPipe != nil {
		t.Errorf("ratios on n/a or limit rows")
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(sample()) {
		t.Fatalf("%d objects", len(objs))
	}
	for _, o := range objs {
		for _, k := range []string{"transport", "workload", "size", "msgs_per_sec", "mb_per_sec", "p50_ns", "p99_ns", "cpu_ns_per_msg", "error"} {
			if _, ok := o[k]; !ok {
				t.Errorf("%v: no %q", o["transport"], k)
			}
		}
		if w := o["workload"]; w != Stream && w != PingPong {
			t.Errorf("workload %v", w)
		}
	}
	var back []Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back[6].P50 == nil || *back[6].P50 != 500 {
		t.Errorf("round trip: %v %+v", err, back)
	}
	buf.Reset()
	WriteJSON(&buf, nil)
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no results: %q", buf.String())
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(sample())+1 || strings.Join(rows[0], ",") != strings.Join(CSVHeader(), ",") {
		t.Fatalf("rows %d, header %v", len(rows), rows[0])
	}
	p50 := slices.Index(CSVHeader(), "p50_ns")
	if rows[4][len(CSVHeader())-1] == "" || rows[1][p50] != "" || rows[7][p50] != "500" {
		t.Errorf("rows: %v", rows)
	}
}

// benchLine is the Go benchmark result format benchstat reads.
var benchLine = regexp.MustCompile(`^Benchmark\S+-\d+\t\d+\t[0-9.]+ ns/op(\t[0-9.]+ \S+)*$`)

func TestWriteBenchfmt(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteBenchfmt(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var bench int
	for _, l := range lines {
		switch {
		case benchLine.MatchString(l):
			bench++
		case regexp.MustCompile(`^[a-z]+: \S+$`).MatchString(l):
		default:
			t.Errorf("line %q is neither a benchmark nor a config line", l)
		}
	}
	if bench != len(sample())-1 {
		t.Errorf("%d benchmark lines, want %d:\n%s", bench, len(sample())-1, buf.String())
	}
	if !strings.Contains(buf.String(), "BenchmarkIPC/workload=pingpong/transport=spsc-spin/size=64B-") ||
		!strings.Contains(buf.String(), "500 p50-ns") {
		t.Errorf("names or units:\n%s", buf.String())
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"x pipe", "of limit", "20.0x", "n/a: POSIX mq", "500ns", "4020%", "limit/atomic", "1.28"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPlot(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"r.png", "r.svg"} {
		p := filepath.Join(dir, name)
		if err := Plot(p, sample()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if name == "r.png" && !bytes.HasPrefix(b, []byte("\x89PNG")) || name == "r.svg" && !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s is not an image (%d bytes)", name, len(b))
		}
	}
	if err := Plot(filepath.Join(dir, "r.jpg"), sample()); err == nil {
		t.Errorf("jpg accepted")
	}
	if err := Plot(filepath.Join(dir, "e.png"), nil); err == nil {
		t.Errorf("empty results accepted")
	}
}

func TestParse(t *testing.T) {
	s, err := ParseSizes("64, 4KiB,1MiB,100")
	if err != nil || len(s) != 4 || s[1] != 4096 || s[2] != 1<<20 || s[3] != 100 {
		t.Errorf("ParseSizes: %v %v", s, err)
	}
	for _, bad := range []string{"", "4", "1GiB", "x"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) accepted", bad)
		}
	}
	if w, err := ParseWaits("spin,park,spin-then-park"); err != nil || len(w) != 3 {
		t.Errorf("ParseWaits: %v %v", w, err)
	}
	if _, err := ParseWaits("nap"); err == nil {
		t.Errorf("ParseWaits(nap) accepted")
	}
	if c, err := ParseCPUs("0,1"); err != nil || len(c) != 2 {
		t.Errorf("ParseCPUs: %v %v", c, err)
	}
	if _, err := ParseCPUs("0"); err == nil {
		t.Errorf("ParseCPUs(0) accepted")
	}
	if SizeName(64) != "64B" || SizeName(4096) != "4KiB" || SizeName(3<<20) != "3MiB" || SizeName(1000) != "1000B" {
		t.Errorf("SizeName")
	}
}
