package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/segment"
)

// chanName returns a fresh channel name, removed (forced) when the test
// ends.
func chanName(t *testing.T, tag string) string {
	name := fmt.Sprintf("cc.%d.%s", os.Getpid(), tag)
	t.Cleanup(func() { _ = shmkit.Remove(name, shmkit.WithForce()) })
	return name
}

// bg is a shmctl process running in the background.
type bg struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func startShmctl(t *testing.T, args ...string) *bg {
	t.Helper()
	b := &bg{cmd: exec.Command(shmctlBin(t), args...)}
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			b.cmd.Wait()
		}
	})
	return b
}

// wait waits for the process and fails the test unless it exits 0.
func (b *bg) wait(t *testing.T) string {
	t.Helper()
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("shmctl %v: %v\nstdout: %s\nstderr: %s", b.cmd.Args[1:], err, b.stdout.String(), b.stderr.String())
	}
	return b.stdout.String()
}

// TestCreateChannelOpen: create --channel makes a channel that a Go
// process joins with Open, with the configuration the flags gave; it is
// kept when nobody uses it, and rm removes it.
func TestCreateChannelOpen(t *testing.T) {
	name := chanName(t, "create")
	out := mustShmctl(t, "create", "--channel", name, "--pattern", "workqueue", "--policy", "drop-newest",
		"--max-message", "1KiB", "--ring-depth", "64", "--publishers", "2", "--subscribers", "3", "--mode", "0640", "-o", "json")
	var got chanCreateOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ch, err := shmkit.Open(name)
	if err != nil {
		t.Fatalf("Open of a channel made by create --channel: %v", err)
	}
	c := ch.Config()
	if c.Pattern != shmkit.WorkQueue || c.Policy != shmkit.DropNewest || c.MaxMessage != 1024 || c.RingDepth != 64 ||
		c.MaxPublishers != 2 || c.MaxSubscribers != 3 || !c.Keep {
		t.Fatalf("Open sees %+v", c)
	}
	if got.Pattern != "workqueue" || got.Limits.MaxMessage != 1024 || !got.Keep || got.Mode != "0640" {
		t.Fatalf("create -o json: %+v", got)
	}
	if fi, err := os.Stat(filepath.Join(segment.POSIXDir, segment.Prefix+name)); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("--mode 0640: the segment file is %v (%v)", fi.Mode(), err)
	}
	ch.Close()
	if !exists(segment.POSIX, name) {
		t.Fatal("the channel went when its last user left; create --channel keeps it")
	}
	if _, errOut, code := shmctl(t, "create", "--channel", name); code != exitError || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("create of an existing channel: exit %d, %q", code, errOut)
	}
	mustRm(t, name)
	if exists(segment.POSIX, name) {
		t.Fatal("rm left the channel")
	}
}

// TestPubSub: `pub` in one process, `sub -o json` in another: every
// message arrives with its bytes, in order, with the publisher's id and
// sequence; the generated load carries its numbers; a work queue's sub
// consumes.
func TestPubSub(t *testing.T) {
	name := chanName(t, "pubsub")
	mustShmctl(t, "create", "--channel", name, "--max-message", "256")
	sub := startShmctl(t, "sub", name, "-o", "json", "--count", "4", "--timeout", "60s")
	msgs := []string{"hello", "two words", "\x01\xff\n", ""}
	var po pubOut
	out := mustShmctl(t, append([]string{"pub", name, "--wait-subscribers", "1", "-o", "json", "--timeout", "60s"}, msgs...)...)
	if err := json.Unmarshal([]byte(out), &po); err != nil || po.Published != 4 {
		t.Fatalf("pub -o json: %q, %v", out, err)
	}
	lines := strings.Split(strings.TrimSpace(sub.wait(t)), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("sub printed %d lines, want %d:\n%s", len(lines), len(msgs), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		var m subMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		data, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil || string(data) != msgs[i] || m.Len != len(msgs[i]) || m.Seq != uint64(i+1) || m.Publisher != po.Publisher ||
			time.Since(m.Time) > time.Minute {
			t.Fatalf("message %d: %+v (%q); want %q from publisher %d", i, m, data, msgs[i], po.Publisher)
		}
	}

	// Generated load: sequence numbers in the payload, text output.
	sub = startShmctl(t, "sub", name, "--count", "100", "--timeout", "60s", "--hex")
	mustShmctl(t, "pub", name, "--count", "100", "--size", "16", "--wait-subscribers", "1")
	text := strings.Split(strings.TrimSpace(sub.wait(t)), "\n")
	for i, line := range text {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i+1))
		copy(b[8:], "abcdefgh")
		// The second pub takes the first one's publisher slot and
		// continues its log's numbering (Sample.Seq): 5, 6, ...
		if !strings.HasSuffix(line, fmt.Sprintf("seq %d len 16: %x", len(msgs)+i+1, b)) {
			t.Fatalf("line %d: %q", i, line)
		}
	}

	// A work queue: one message, one consumer.
	wq := chanName(t, "wq")
	mustShmctl(t, "create", "--channel", wq, "--pattern", "workqueue")
	sub = startShmctl(t, "sub", wq, "--count", "1", "--timeout", "60s")
	mustShmctl(t, "pub", wq, "job-1", "--wait-subscribers", "1")
	if got := sub.wait(t); !strings.HasSuffix(got, "seq 1 len 5: job-1\n") {
		t.Fatalf("work queue sub: %q", got)
	}
	// stdin lines.
	sub = startShmctl(t, "sub", name, "--count", "3", "--timeout", "60s")
	cmd := exec.Command(shmctlBin(t), "pub", name, "--wait-subscribers", "1")
	cmd.Stdin = strings.NewReader("a\nb b\nc\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pub from stdin: %v %s", err, out)
	}
	if got := sub.wait(t); !strings.Contains(got, "len 3: b b\n") || strings.Count(got, "\n") != 3 {
		t.Fatalf("sub of stdin lines: %q", got)
	}
}

// TestRecordReplay: 10 000 messages published at a steady rate are
// recorded, replayed into a second channel with the original timing and
// recorded again: order, payloads, sequence numbers and epochs equal, each
// recorded publisher mapped to one replayed publisher, and the replay's
// span close to the original's. The file reads back with pcapgo (readPcap)
// and, when tshark is installed, with tshark and the dissector.
func TestRecordReplay(t *testing.T) {
	const n = 10000
	a, b := chanName(t, "reca"), chanName(t, "recb")
	mustShmctl(t, "create", "--channel", a, "--max-message", "512")
	mustShmctl(t, "create", "--channel", b, "--max-message", "512")
	dir := t.TempDir()
	fa, fb := filepath.Join(dir, "a.pcapng"), filepath.Join(dir, "b.pcapng")

	rec := startShmctl(t, "record", a, "-o", fa, "--count", fmt.Sprint(n))
	mustShmctl(t, "pub", a, "--count", fmt.Sprint(n), "--size", "100", "--rate", "20000", "--wait-subscribers", "1")
	if out := rec.wait(t); !strings.Contains(out, fmt.Sprintf("recorded %d message(s)", n)) {
		t.Fatalf("record: %q", out)
	}
	rec = startShmctl(t, "record", b, "-o", fb, "--count", fmt.Sprint(n))
	start := time.Now()
	mustShmctl(t, "replay", fa, b, "--wait-subscribers", "1")
	took := time.Since(start)
	rec.wait(t)

	ma, err := readPcap(fa)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := readPcap(fb)
	if err != nil {
		t.Fatal(err)
	}
	if len(ma) != n || len(mb) != n {
		t.Fatalf("%d and %d messages recorded, want %d", len(ma), len(mb), n)
	}
	pubMap := map[uint32]uint32{}
	for i := range ma {
		x, y := ma[i], mb[i]
		if p, ok := pubMap[x.Publisher]; ok && p != y.Publisher {
			t.Fatalf("message %d: publisher %d replayed as %d and as %d", i, x.Publisher, p, y.Publisher)
		}
		pubMap[x.Publisher] = y.Publisher
		if !bytes.Equal(x.Data, y.Data) || x.Seq != y.Seq || x.Epoch != y.Epoch || x.Len != y.Len || x.Flags != y.Flags ||
			x.Seq != uint64(i+1) || binary.LittleEndian.Uint64(x.Data) != uint64(i+1) {
			t.Fatalf("message %d: recorded %+v, replayed %+v", i, x.pcapMsg, y.pcapMsg)
		}
	}
	spanA, spanB := ma[n-1].Time.Sub(ma[0].Time), mb[n-1].Time.Sub(mb[0].Time)
	t.Logf("original span %v, replayed span %v, replay took %v (machine shared)", spanA, spanB, took)
	// The replay waits for each message's time, so it never takes less than
	// the recording's span (its own run time includes joining the channel
	// too); on a loaded machine it may run late, so the upper bounds are
	// generous. (The spans are receive times, which a recorder stalled at
	// its start compresses: they bound nothing from below.)
	if took < spanA*95/100 {
		t.Errorf("the replay took %v, less than the recording's span %v: it did not keep the timing", took, spanA)
	}
	if spanB > spanA*5+10*time.Second || took > spanA*5+20*time.Second {
		t.Errorf("replayed span %v (run %v) against the original %v", spanB, took, spanA)
	}
	// pub --rate 20000 paces: 10 000 messages take about 0.5 s, of which a
	// recorder that starts late may miss the first part.
	if spanA < 100*time.Millisecond {
		t.Errorf("original span %v: pub --rate 20000 did not pace", spanA)
	}

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed: dissector check skipped")
		return
	}
	lua, _ := filepath.Abs("../../contrib/wireshark/shmkit.lua")
	cmd := exec.Command(tshark, "-X", "lua_script:"+lua, "-r", fa, "-c", "5", "-T", "fields",
		"-e", "shmkit.publisher", "-e", "shmkit.epoch", "-e", "shmkit.seq", "-e", "shmkit.len", "-e", "shmkit.flags")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v\n%s", err, se.String())
	}
	rows := strings.Split(strings.TrimSpace(so.String()), "\n")
	if len(rows) != 5 {
		t.Fatalf("tshark printed %q", so.String())
	}
	for i, row := range rows {
		want := fmt.Sprintf("%d\t%d\t%d\t%d\t0x00000000", ma[i].Publisher, ma[i].Epoch, ma[i].Seq, ma[i].Len)
		if row != want {
			t.Fatalf("tshark row %d: %q, want %q", i, row, want)
		}
	}
}

// shmkitSegments lists the /dev/shm/shmkit.* names that contain tag.
func shmkitSegments(tag string) []string {
	ents, _ := os.ReadDir(segment.POSIXDir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), segment.Prefix) && strings.Contains(e.Name(), tag) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestChannelMisuse: an unknown channel, a wrong pattern, a message too
// large (pub and replay), an unreadable file, a bad flag: one line on
// stderr, a non-zero exit, and nothing created or left behind (no
// segment, no output file, the target channel empty).
func TestChannelMisuse(t *testing.T) {
	tag := fmt.Sprintf("cc.%d.mis", os.Getpid())
	small, big := chanName(t, "mis.small"), chanName(t, "mis.big")
	mustShmctl(t, "create", "--channel", small, "--max-message", "64")
	mustShmctl(t, "create", "--channel", big, "--max-message", "1KiB")
	dir := t.TempDir()
	rec := filepath.Join(dir, "big.pcapng")
	r := startShmctl(t, "record", big, "-o", rec, "--count", "1")
	mustShmctl(t, "pub", big, strings.Repeat("x", 500), "--wait-subscribers", "1")
	r.wait(t)
	notPcap := filepath.Join(dir, "text.pcapng")
	os.WriteFile(notPcap, []byte("not a capture\n"), 0o600)
	missing := fmt.Sprintf("cc.%d.mis.none", os.Getpid())
	before := shmkitSegments(tag)

	probe := startShmctl(t, "sub", small, "-o", "json") // sees anything that gets published, until interrupted
	if ch, err := shmkit.Open(small); err != nil {
		t.Fatal(err)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := ch.WaitFor(ctx, shmkit.RoleSubscriber, 1)
		cancel()
		ch.Close()
		if err != nil {
			t.Fatalf("the probe subscriber never joined: %v", err)
		}
	}
	for _, c := range []struct {
		why  string
		args []string
		file string // must not be created
	}{
		{"unknown channel: pub", []string{"pub", missing, "x"}, ""},
		{"unknown channel: sub", []string{"sub", missing, "--count", "1"}, ""},
		{"unknown channel: record", []string{"record", missing, "-o", filepath.Join(dir, "r1.pcapng")}, filepath.Join(dir, "r1.pcapng")},
		{"unknown channel: replay", []string{"replay", rec, missing}, ""},
		{"wrong pattern", []string{"create", "--channel", missing, "--pattern", "fanout"}, ""},
		{"wrong policy", []string{"create", "--channel", missing, "--policy", "maybe"}, ""},
		{"raw flag on a channel", []string{"create", "--channel", missing, "--size", "1MiB"}, ""},
		{"message too large: pub", []string{"pub", small, strings.Repeat("y", 65)}, ""},
		{"message too large: replay", []string{"replay", rec, small}, ""},
		{"unreadable file: replay", []string{"replay", filepath.Join(dir, "nope.pcapng"), small}, ""},
		{"not a pcapng: replay", []string{"replay", notPcap, small}, ""},
		{"no pub --file", []string{"pub", small, "--file", filepath.Join(dir, "nope")}, ""},
		{"record onto an existing file", []string{"record", small, "-o", notPcap, "--count", "1"}, ""},
		{"record without -o", []string{"record", small}, ""},
		{"bad flag: --rate", []string{"pub", small, "--count", "1", "--rate", "-1"}, ""},
		{"bad flag: --speed", []string{"replay", rec, small, "--speed", "0"}, ""},
		{"bad flag: --size", []string{"pub", small, "--count", "1", "--size", "4"}, ""},
		{"bad flag: unknown", []string{"sub", small, "--frobnicate"}, ""},
		{"bad flag: --timeout", []string{"sub", small, "--timeout", "soon"}, ""},
		{"sub with nobody publishing", []string{"sub", small, "--count", "1", "--timeout", "50ms"}, ""},
		{"replay with arguments missing", []string{"replay", rec}, ""},
	} {
		_, errOut, code := shmctl(t, c.args...)
		if code == 0 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "shmctl: ") {
			t.Errorf("%s: exit %d, stderr %q; want one line and a non-zero exit", c.why, code, errOut)
		}
		if c.file != "" && fileExists(c.file) {
			t.Errorf("%s: left %s behind", c.why, c.file)
		}
	}
	if after := shmkitSegments(tag); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("segments before %v, after %v", before, after)
	}
	probe.cmd.Process.Signal(os.Interrupt)
	if err := probe.cmd.Wait(); err != nil || probe.stdout.Len() != 0 {
		t.Errorf("the misuses published into %s: %q (%v)", small, probe.stdout.String(), err)
	}
}

// TestMetricsNoChannel: metrics serves a page with its own series and the
// process and Go collectors even when no channel is found (a --dir of no
// channels, and whatever /dev/shm holds).
func TestMetricsNoChannel(t *testing.T) {
	cmd := exec.Command(shmctlBin(t), "metrics", "--listen", "127.0.0.1:0", "--dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if err != nil || !ok {
		t.Fatalf("metrics said %q, %v", line, err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nshmkit_channels ", "\nshmkit_build_info{goversion=\"go", "\nprocess_cpu_seconds_total ",
		"\ngo_goroutines ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains("\n"+string(body), want) {
			t.Errorf("no %q in the page:\n%s", strings.TrimSpace(want), body)
		}
	}
}
