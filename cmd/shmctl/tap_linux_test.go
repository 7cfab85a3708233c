package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/segment"
)

// tapPayload is message seq of the tap tests' publisher: 100 bytes that
// say their seq, so a tap's copy can be checked byte for byte.
func tapPayload(seq uint64) []byte {
	return []byte(fmt.Sprintf("%-100s", strings.Repeat(fmt.Sprintf("msg %d ", seq), 20))[:100])
}

// tapChannel creates a channel with a subscriber child draining it and a
// "tap" traffic child publishing, and returns the publisher's pid.
func tapChannel(t *testing.T, name string) int {
	t.Helper()
	ch, err := shmkit.Create(name, shmkit.Config{MaxMessage: 256, RingDepth: 64, TapSnap: 64, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); shmkit.Remove(name) })
	trafficChild(t, name, "sub", 0)
	return trafficChild(t, name, "tap", 0)
}

func TestTapJSON(t *testing.T) {
	name := fmt.Sprintf("cli.%d.tapjson", os.Getpid())
	tapChannel(t, name)
	out := mustShmctl(t, "tap", name, "-n", "100", "-o", "json")
	sc := bufio.NewScanner(strings.NewReader(out))
	var last uint64
	n, pub := 0, -1
	for sc.Scan() {
		var m tapMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v: %s", n+1, err, sc.Text())
		}
		data, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil || m.Encoding != "base64" {
			t.Fatalf("data %q (%s): %v", m.Data, m.Encoding, err)
		}
		if m.Len != 100 || m.Captured != 64 || len(data) != 64 || !bytes.Equal(data, tapPayload(m.Seq)[:64]) {
			t.Fatalf("message %d: len %d, captured %d, data %q", m.Seq, m.Len, m.Captured, data)
		}
		if pub == -1 {
			pub = m.Publisher
		}
		if m.Publisher != pub || m.Slot != pub&0xff || (last != 0 && m.Seq != last+1+m.Missed) {
			t.Fatalf("message %+v after %d from publisher %#x", m, last, pub)
		}
		if time.Since(m.Time) > time.Minute || m.Time.After(time.Now()) {
			t.Fatalf("time %v", m.Time)
		}
		last = m.Seq
		n++
	}
	if n != 100 {
		t.Fatalf("%d messages, want 100", n)
	}
	// --hex in JSON, and the text form with its summary line.
	out = mustShmctl(t, "tap", name, "-n", "3", "-o", "json", "--hex")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m tapMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if data, err := hex.DecodeString(m.Data); err != nil || m.Encoding != "hex" || !bytes.Equal(data, tapPayload(m.Seq)[:64]) {
			t.Fatalf("hex message %+v: %v", m, err)
		}
	}
	out = mustShmctl(t, "tap", name, "-n", "5")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if strings.HasPrefix(lines[0], "... ") { // the tap joined a whole ring behind: "... N missed" comes first
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "tap: ") || !strings.Contains(lines[0], " len 100: msg ") {
		t.Fatalf("text output:\n%s", out)
	}
	// inspect shows no tap left attached.
	var in struct {
		Channel *chanSnapshot `json:"channel"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &in); err != nil || in.Channel == nil || len(in.Channel.Taps) != 0 {
		t.Fatalf("inspect after the taps left: %+v, %v", in.Channel, err)
	}
}

// TestTapInspect: inspect and stat show an attached tap with its pid.
func TestTapInspect(t *testing.T) {
	name := fmt.Sprintf("cli.%d.tapinspect", os.Getpid())
	tapChannel(t, name)
	tp, err := shmkit.OpenTap(name)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	var in struct {
		Channel *chanSnapshot `json:"channel"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "inspect", name, "-o", "json")), &in); err != nil {
		t.Fatal(err)
	}
	if in.Channel == nil || len(in.Channel.Taps) != 1 || in.Channel.Taps[0].PID != os.Getpid() || !in.Channel.Taps[0].Alive {
		t.Fatalf("inspect: taps %+v", in.Channel)
	}
	if out := mustShmctl(t, "inspect", name); !strings.Contains(out, "\ntaps:\n") {
		t.Fatalf("inspect text has no taps section:\n%s", out)
	}
	if out := mustShmctl(t, "__complete", "tap", name[:len(name)-3]); !strings.Contains(out, name+"\n") {
		t.Errorf("completing tap's NAME:\n%s", out)
	}
	var st statOut
	if err := json.Unmarshal([]byte(mustShmctl(t, "stat", name, "--interval", "20ms", "-o", "json")), &st); err != nil || len(st.Taps) != 1 {
		t.Fatalf("stat: taps %+v, %v", st.Taps, err)
	}
}

// TestTapPcapng: the file parses back with pcapgo's reader: link type
// USER0, each packet the 40-byte message header (publisher, sequence,
// length, flags tap and truncated) and the captured bytes; caplen 40 + the
// captured bytes, origlen 40 + the message's length.
func TestTapPcapng(t *testing.T) {
	name := fmt.Sprintf("cli.%d.tappcap", os.Getpid())
	tapChannel(t, name)
	file := filepath.Join(t.TempDir(), "tap.pcapng")
	out := mustShmctl(t, "tap", name, "-n", "50", "-o", "json", "--pcapng", file)
	var seqs []uint64
	var pubs []int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m tapMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, m.Seq)
		pubs = append(pubs, m.Publisher)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != linkTypeUser0 {
		t.Fatalf("link type %v", r.LinkType())
	}
	n := 0
	for ; ; n++ {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n >= len(seqs) || ci.Length != msgHeaderLen+100 || ci.CaptureLength != msgHeaderLen+64 {
			t.Fatalf("packet %d: %+v %q", n, ci, data)
		}
		m, err := parsePcapMsg(data)
		if err != nil || m.Seq != seqs[n] || int(m.Publisher) != pubs[n] || m.Len != 100 ||
			m.Flags != msgFlagTap|msgFlagTrunc || !bytes.Equal(m.Data, tapPayload(seqs[n])[:64]) {
			t.Fatalf("packet %d: %+v, %v", n, m, err)
		}
		if time.Since(ci.Timestamp) > time.Minute {
			t.Fatalf("packet %d time %v", n, ci.Timestamp)
		}
	}
	if n != 50 {
		t.Fatalf("%d packets, want 50", n)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pcapng file: %v %v", fi.Mode(), err)
	}
	// An existing file is refused, and left as it was.
	if _, errOut, code := shmctl(t, "tap", name, "-n", "1", "--pcapng", file); code != exitError || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("tap --pcapng onto an existing file: exit %d, %q", code, errOut)
	}
}

// TestTapBadInput: one line on stderr, exit 1, nothing on stdout, nothing
// changed (no tap left attached, no file made).
func TestTapBadInput(t *testing.T) {
	plain := fmt.Sprintf("cli.%d.tapplain", os.Getpid())
	t.Cleanup(func() { segment.Remove(segment.POSIX, plain, nil) })
	mustShmctl(t, "create", plain, "--size", "64KiB")
	notap := fmt.Sprintf("cli.%d.notap", os.Getpid())
	ch, err := shmkit.Create(notap, shmkit.Config{TapSlots: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	live := fmt.Sprintf("cli.%d.taplive", os.Getpid())
	lch, err := shmkit.Create(live, shmkit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lch.Close() })
	dir := t.TempDir()
	for _, args := range [][]string{
		{"tap"},
		{"tap", "a", "b"},
		{"tap", fmt.Sprintf("cli.%d.nosuch", os.Getpid())},
		{"tap", plain},
		{"tap", notap},
		{"tap", live, "-n", "-1"},
		{"tap", live, "-o", "yaml"},
		{"tap", live, "--backend", "nfs"},
		{"tap", live, "--backend", "posix", "--sysv-key", "0x10"},
		{"tap", live, "--pcapng", filepath.Join(dir, "no", "such", "dir.pcapng")},
		{"tap", live, "--no-such-flag"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := shmctl(t, args...)
			lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
			if code != exitError || len(lines) != 1 || !strings.HasPrefix(lines[0], "shmctl: ") || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line", code, out, errOut)
			}
		})
	}
	if _, st, err := shmkit.Inspect(live); err != nil || len(st.Taps) != 0 {
		t.Errorf("a failed tap stayed attached: %+v, %v", st.Taps, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed tap made files: %v", ents)
	}
}
