package bridge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

// fileSink stands for the second host's channel in the cross-process
// tests: each message is appended to a file with one write (a record
// survives a SIGKILL of the writer whole or not at all).
type fileSink struct {
	f   *os.File
	buf []byte
	max int
}

func (s *fileSink) Publish(_ context.Context, p []byte) error {
	if len(p) > s.max {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p))
	}
	s.buf = binary.LittleEndian.AppendUint32(s.buf[:0], uint32(len(p)))
	s.buf = append(s.buf, p...)
	_, err := s.f.Write(s.buf)
	return err
}
func (s *fileSink) MaxMessage() int          { return s.max }
func (s *fileSink) PublisherID() (int, bool) { return 0, false }

// readRecords returns the whole records a fileSink wrote so far, and the
// file's length up to the end of the last one: a record being written
// while we read (or cut by a SIGKILL between two pages of its write) is
// not returned.
func readRecords(path string) ([][]byte, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	var out [][]byte
	var off int64
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint32(b))
		if n > 16<<10 {
			return nil, 0, fmt.Errorf("record of %d bytes at %d", n, off)
		}
		if 4+n > len(b) {
			break
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
		off += int64(4 + n)
	}
	return out, off, nil
}

// cutTorn drops a record the killed child left half-written (as a channel
// discards a dead publisher's unpublished loan): it was not acked, so the
// restarted bridge delivers it again.
func cutTorn(t *testing.T, path string) {
	t.Helper()
	_, n, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, n); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// wholeFile fails unless the file ends with a whole record.
func wholeFile(t *testing.T, path string) [][]byte {
	t.Helper()
	recs, n, err := readRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != n {
		t.Fatalf("%s: %v; %d bytes of whole records", path, err, n)
	}
	return recs
}

// childInBridge runs an in bridge (core NATS or JetStream) into a fileSink
// until SIGTERM, then writes its Stats as JSON. Environment: BRIDGE_URL,
// BRIDGE_STREAM, BRIDGE_OUT, BRIDGE_STATE, BRIDGE_STATS.
func childInBridge() int {
	f, err := os.OpenFile(os.Getenv("BRIDGE_OUT"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	cfg := Config{
		URLs: []string{os.Getenv("BRIDGE_URL")}, Channel: "kill", Direction: In,
		Stream: os.Getenv("BRIDGE_STREAM"), Durable: "host2", AckWait: time.Second,
		StateFile: os.Getenv("BRIDGE_STATE"), MaxPending: 1 << 16,
	}
	b, err := New(cfg, nil, &fileSink{f: f, max: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runErr := b.Run(ctx)
	_ = b.Close()
	js, _ := json.Marshal(b.Stats())
	if err := os.WriteFile(os.Getenv("BRIDGE_STATS"), js, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, runErr)
		return 1
	}
	return 0
}

type childRun struct {
	cmd   *exec.Cmd
	stats string
}

func startChild(t *testing.T, dir, url, stream string, n int) *childRun {
	t.Helper()
	stats := fmt.Sprintf("%s/stats%d.json", dir, n)
	cmd := proctest.Command(t, "inbridge", "BRIDGE_URL="+url, "BRIDGE_STREAM="+stream,
		"BRIDGE_OUT="+dir+"/host2.log", "BRIDGE_STATE="+dir+"/state", "BRIDGE_STATS="+stats)
	proctest.Start(t, cmd)
	return &childRun{cmd: cmd, stats: stats}
}

func (c *childRun) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// stop ends the child with SIGTERM and returns its Stats.
func (c *childRun) stop(t *testing.T) Stats {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("in bridge child: %v", err)
	}
	var s Stats
	b, err := os.ReadFile(c.stats)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}
