package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
	"github.com/shmkit/shmkit/segment"
)

// Channel traffic children: CH_ROLE=pub publishes CH_RATE messages of 100
// bytes a second (catching up after any stall, so over any stretch it has
// sent rate × elapsed), CH_ROLE=tap publishes tapPayload(1),
// tapPayload(2), ... as fast as it can, pausing 100 µs every 50 messages,
// CH_ROLE=sub receives and releases everything. All use the public shmkit
// API on the channel CH_NAME and run until stdin closes.
func init() {
	proctest.Register("chantraffic", func() int {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
		ch, err := shmkit.Open(os.Getenv("CH_NAME"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer ch.Close()
		switch os.Getenv("CH_ROLE") {
		case "pub":
			rate, _ := strconv.Atoi(os.Getenv("CH_RATE"))
			p, err := ch.Publisher()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer p.Close()
			fmt.Println("ready")
			msg := make([]byte, 100)
			start, sent := time.Now(), 0
			for ctx.Err() == nil {
				for target := int(float64(rate) * time.Since(start).Seconds()); sent < target; sent++ {
					if err := p.Send(ctx, msg); err != nil {
						return 0
					}
				}
				time.Sleep(time.Millisecond)
			}
		case "tap":
			p, err := ch.Publisher()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer p.Close()
			fmt.Println("ready")
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				if err := p.Send(ctx, tapPayload(seq)); err != nil {
					return 0
				}
				if seq%50 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
			return 0
		case "sub":
			s, err := ch.Subscriber()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer s.Close()
			fmt.Println("ready")
			for {
				smp, err := s.Receive(ctx)
				if err != nil {
					return 0
				}
				smp.Release()
			}
		}
		return 2
	})
}

// trafficChild starts a traffic child and waits for its "ready"; closing
// stdin at the end of the test lets it leave the channel cleanly.
func trafficChild(t *testing.T, name, role string, rate int) int {
	t.Helper()
	cmd := proctest.Command(t, "chantraffic", "CH_NAME="+name, "CH_ROLE="+role, "CH_RATE="+strconv.Itoa(rate))
	cmd.Stdout = nil
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("%s child: %q, %v", role, line, err)
	}
	return cmd.Process.Pid
}

// liveChannel creates a channel with one subscriber child and one
// publisher child sending rate messages a second, and waits until both
// counters move.
func liveChannel(t *testing.T, name string, rate int) (ch *shmkit.Channel, pub, sub int) {
	t.Helper()
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 256, RingDepth: 64, ChunksPerClass: 128, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); shmkit.Remove(name) })
	sub = trafficChild(t, name, "sub", 0)
	pub = trafficChild(t, name, "pub", rate)
	for deadline := time.Now().Add(30 * time.Second); ; {
		st, err := ch.Stats()
		if err != nil {
			t.Fatal(err)
		}
		moving := 0
		for _, p := range st.Participants {
			if (p.PID == pub || p.PID == sub) && p.Messages > 0 {
				moving++
			}
		}
		if moving == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic never started: %+v", st.Participants)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable fact
	}
	return ch, pub, sub
}

// counted reads the messages pid has counted as a publisher.
func counted(t *testing.T, ch *shmkit.Channel, pid int) uint64 {
	t.Helper()
	st, err := ch.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Participants {
		if p.PID == pid && p.Role == "publisher" {
			return p.Messages
		}
	}
	t.Fatalf("pid %d not in the channel", pid)
	return 0
}

func TestInspectChannel(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chaninspect", os.Getpid())
	_, pub, sub := liveChannel(t, name, 500)
	var out struct {
		Holders []holder      `json:"holders"`
		Channel *chanSnapshot `json:"channel"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	c := out.Channel
	if c == nil || c.Pattern != "pubsub" || c.Limits.RingDepth != 64 || c.Limits.MaxMessage != 256 || c.Warning != "" {
		t.Fatalf("channel section: %+v", c)
	}
	roles := map[string]bool{}
	for _, p := range c.Participants {
		if !p.Alive {
			t.Errorf("participant %+v reported dead", p)
		}
		roles[fmt.Sprint(p.PID, p.Role)] = true
	}
	if !roles[fmt.Sprint(pub, "publisher")] || !roles[fmt.Sprint(sub, "subscriber")] || !roles[fmt.Sprint(os.Getpid(), "handle")] {
		t.Errorf("participants: %+v", c.Participants)
	}
	ringOf := -1
	for _, r := range c.Rings {
		if r.Subscriber == sub {
			ringOf = r.Ring
		}
		if r.Depth != 64 || r.Len < 0 || r.Len > 64 {
			t.Errorf("ring %+v", r)
		}
	}
	if len(c.Rings) != c.Limits.MaxSubscribers || ringOf < 0 {
		t.Errorf("rings %+v: none for subscriber %d", c.Rings, sub)
	}
	if len(c.Pool.Classes) == 0 || c.Pool.Total == 0 {
		t.Errorf("pool: %+v", c.Pool)
	}
	// The participant table counts for gc and rm.
	found := false
	for _, h := range out.Holders {
		if h.PID == pub {
			found = strings.Contains(strings.Join(h.Roles, ","), "participant")
		}
	}
	if !found {
		t.Errorf("holders %+v: publisher %d not held as a participant", out.Holders, pub)
	}
	text := mustShmctl(t, "inspect", name)
	for _, want := range []string{"channel:", "pattern:", "pubsub", "participants:", "publisher", "subscriber", "rings:", "pool:"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text)
		}
	}
}

// within reports whether got is within frac of want.
func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

func TestStatRates(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chanstat", os.Getpid())
	const rate = 2000
	ch, pub, sub := liveChannel(t, name, rate)
	// The expectation comes from the counters themselves, read around the
	// stat run: the messages the publisher counted over a window that
	// encloses stat's interval, divided by that window.
	t0, n0 := time.Now(), counted(t, ch, pub)
	out := mustShmctl(t, "stat", name, "--interval", "2s", "-o", "json")
	t1, n1 := time.Now(), counted(t, ch, pub)
	want := float64(n1-n0) / t1.Sub(t0).Seconds()
	var s statOut
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.IntervalSec < 1.9 || s.Publishers != 1 || s.Subscribers != 1 {
		t.Fatalf("stat: %+v", s)
	}
	for _, p := range s.Parts {
		if (p.PID != pub || p.Role != "publisher") && (p.PID != sub || p.Role != "subscriber") {
			continue
		}
		if got := float64(p.DeltaMessages) / s.IntervalSec; !within(p.MsgsPerSec, got, 1e-9) {
			t.Errorf("%s: %.1f msg/s but %d messages in %.3fs", p.Role, p.MsgsPerSec, p.DeltaMessages, s.IntervalSec)
		}
		if !within(p.MsgsPerSec, want, 0.10) {
			t.Errorf("%s: stat says %.1f msg/s; the counters say %.1f (%d in %v); sent at %d/s",
				p.Role, p.MsgsPerSec, want, n1-n0, t1.Sub(t0), rate)
		}
		if !within(p.BytesPerSec, 100*p.MsgsPerSec, 0.01) {
			t.Errorf("%s: %.1f bytes/s for %.1f msg/s of 100 bytes", p.Role, p.BytesPerSec, p.MsgsPerSec)
		}
		t.Logf("%s pid %d: %.1f msg/s (counters around it: %.1f; paced at %d)", p.Role, p.PID, p.MsgsPerSec, want, rate)
	}
	if len(s.Rings) == 0 || len(s.Pool.Classes) == 0 {
		t.Errorf("stat: rings %+v, pool %+v", s.Rings, s.Pool)
	}
	text := mustShmctl(t, "stat", name, "--interval", "100ms")
	for _, want := range []string{"MSG/S", "publisher", "subscriber", "RING", "CLASS"} {
		if !strings.Contains(text, want) {
			t.Errorf("stat text lacks %q:\n%s", want, text)
		}
	}
}

func TestWatchJSON(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chanwatch", os.Getpid())
	_, pub, _ := liveChannel(t, name, 1000)
	out := mustShmctl(t, "watch", name, "--interval", "300ms", "--count", "3", "-o", "json")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("watch --count 3 printed %d lines:\n%s", len(lines), out)
	}
	var prev time.Time
	for i, l := range lines {
		var s statOut
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		if !s.Time.After(prev) || s.IntervalSec <= 0 {
			t.Errorf("line %d: time %v after %v, interval %v", i, s.Time, prev, s.IntervalSec)
		}
		prev = s.Time
		moved := false
		for _, p := range s.Parts {
			moved = moved || (p.PID == pub && p.Role == "publisher" && p.MsgsPerSec > 0 && !p.New)
		}
		if !moved {
			t.Errorf("line %d: the publisher shows no rate: %s", i, l)
		}
	}
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// series "name{channel,role}" → value, for the checks below.
	out := map[string]float64{}
	for fname, f := range fams {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[fname+"{"+l["channel"]+","+l["role"]+l["state"]+"}"] += v
		}
	}
	return out
}

// startMetrics runs shmctl metrics on a free loopback port until the test
// ends and returns its host:port.
func startMetrics(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(shmctlBin(t), "metrics", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "serving http://")
	addr, ok2 := strings.CutSuffix(addr, "/metrics")
	if err != nil || !ok || !ok2 {
		t.Fatalf("metrics said %q, %v", line, err)
	}
	return addr
}

func TestMetrics(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chanmetrics", os.Getpid())
	later := fmt.Sprintf("cli.%d.chanlater", os.Getpid())
	liveChannel(t, name, 1000)
	addr := startMetrics(t)

	// A tap attached to the live channel is exported too, once it has read
	// a message.
	tap, err := shmkit.OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = tap.Receive(tctx)
	tcancel()
	if err != nil {
		t.Fatal(err)
	}

	m := scrape(t, addr)
	if m["shmkit_tap_alive{"+name+",}"] != 1 || m["shmkit_tap_received_total{"+name+",}"] == 0 {
		t.Errorf("the attached tap is not exported (alive, received): %v", m)
	}
	if m["shmkit_channel_info{"+name+",}"] != 1 || m["shmkit_channel_participants{"+name+",publisher}"] != 1 ||
		m["shmkit_participant_messages_total{"+name+",publisher}"] == 0 ||
		m["shmkit_participant_messages_total{"+name+",subscriber}"] == 0 {
		t.Errorf("first scrape lacks the live channel: %v", m)
	}
	if m["shmkit_pool_chunks{"+name+",free}"] == 0 {
		t.Errorf("no free pool chunks exported: %v", m)
	}
	first := m["shmkit_participant_messages_total{"+name+",publisher}"]
	if _, ok := m["shmkit_channel_info{"+later+",}"]; ok {
		t.Fatal("a channel not yet created is exported")
	}

	// A channel created after the server started appears; removed, it
	// disappears.
	ch2, err := shmkit.Create(later, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shmkit.Remove(later) })
	m = scrape(t, addr)
	if m["shmkit_channel_info{"+later+",}"] != 1 {
		t.Errorf("the new channel does not appear")
	}
	if m["shmkit_participant_messages_total{"+name+",publisher}"] <= first {
		t.Errorf("the publisher's counter did not move between scrapes")
	}
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := segment.Stat(segment.POSIX, later, nil); err == nil {
		t.Fatal("the last participant's Close left the channel")
	}
	if _, ok := scrape(t, addr)["shmkit_channel_info{"+later+",}"]; ok {
		t.Errorf("a removed channel is still exported")
	}
}

func TestChannelCommandsBadInput(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chanbad", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	plain := fmt.Sprintf("cli.%d.plainseg", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, plain, nil) })
	mustShmctl(t, "create", plain, "--size", "64KiB")
	for _, args := range [][]string{
		{"stat", name},
		{"stat", plain},
		{"stat"},
		{"stat", plain, "extra"},
		{"stat", plain, "-o", "yaml"},
		{"stat", plain, "--interval", "0s"},
		{"stat", plain, "--interval", "soon"},
		{"stat", plain, "--backend", "nfs"},
		{"stat", plain, "--backend", "sysv", "--sysv-key", "0x1234"},
		{"watch", name},
		{"watch", plain},
		{"watch"},
		{"watch", plain, "--count", "-1"},
		{"watch", plain, "--interval", "2h"},
		{"watch", plain, "-o", "yaml"},
		{"metrics", "extra"},
		{"metrics", "--listen", "nohostport"},
		{"metrics", "--listen", "256.0.0.1:80"},
		{"metrics", "--dir"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			out, errOut, code := shmctl(t, args...)
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "shmctl: ") || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want non-zero and one line", code, out, errOut)
			}
		})
	}
	if _, err := segment.Stat(segment.POSIX, name, nil); err == nil {
		t.Error("a bad command created a segment")
	}
}

// TestChannelCorruptOrNewer: a channel of a newer layout version, one with
// a corrupt header and one with an impossible ring: stat and watch say so
// in one line and exit 1; inspect still shows the segment, with the
// problem in the channel section.
func TestChannelCorruptOrNewer(t *testing.T) {
	name := fmt.Sprintf("cli.%d.chancorrupt", os.Getpid())
	ch, err := shmkit.Create(name, shmkit.Config{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := segment.Open(segment.POSIX, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	word := func(region string, off int64) *uint64 {
		r, err := seg.Region(region)
		if err != nil {
			t.Fatal(err)
		}
		b, err := seg.Bytes(r.Offset+off, 8)
		if err != nil {
			t.Fatal(err)
		}
		return (*uint64)(unsafe.Pointer(&b[0]))
	}
	badLine := func(want string) {
		t.Helper()
		for _, args := range [][]string{{"stat", name, "--interval", "10ms"}, {"watch", name, "--count", "1", "--interval", "10ms"}} {
			out, errOut, code := shmctl(t, args...)
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], want) || out != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", args, code, out, errOut, want)
			}
		}
	}
	hdr := word("chan", 0) // magic (low half) and version (high half)
	good := *hdr
	*hdr = good&0xffffffff | 9<<32
	badLine("layout version 9")
	*hdr = good
	crc := word("chan", 120) // the CRC-32C in its high half
	saved := *crc
	*crc ^= 1 << 40
	badLine("checksum")
	*crc = saved

	tail := word("rings", 320) // the first reader line of publisher log 0
	*tail = 0x77               // a state no reader writes
	badLine("log 0 reader 0")
	var out struct {
		Channel *chanSnapshot `json:"channel"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Channel == nil || !strings.Contains(out.Channel.Warning, "corrupt") {
		t.Errorf("inspect of a corrupt ring: %+v", out.Channel)
	}
	*tail = 0
	mustShmctl(t, "stat", name, "--interval", "10ms")
}
