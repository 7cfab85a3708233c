package holders

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/proctest"
	"github.com/shmkit/shmkit/segment"
)

func TestMain(m *testing.M) { proctest.Main(m) }

func init() {
	// creator: creates segment HOLD_NAME, says "ready", holds it until its
	// stdin closes or it is killed.
	proctest.Register("creator", func() int {
		s, err := segment.Create(segment.POSIX, os.Getenv("HOLD_NAME"), 64<<10, nil)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer s.Close()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin) // until the test closes it or kills this process
		return 0
	})
}

// TestRawCreatorOffsets: rawCreator reads the creator fields where
// segment.Create writes them.
func TestRawCreatorOffsets(t *testing.T) {
	name := fmt.Sprintf("holders.%d.raw", os.Getpid())
	s, err := segment.Create(segment.POSIX, name, 64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	defer s.Close()
	start, err := segment.ProcessStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pid, st := rawCreator(s.Path()); pid != os.Getpid() || st != start {
		t.Fatalf("rawCreator: pid %d start %d; want %d, %d", pid, st, os.Getpid(), start)
	}
}

// TestJudge: a segment whose creator runs in another process is in use
// (creator and maps); once the creator is SIGKILLed it is dead; a live
// participant reported by the Source keeps it in use, a Source that fails
// keeps it, and a removed one is Gone.
func TestJudge(t *testing.T) {
	name := fmt.Sprintf("holders.%d.judge", os.Getpid())
	cmd := proctest.Command(t, "creator", "HOLD_NAME="+name)
	cmd.Stdout = nil // StdoutPipe below
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, cmd)
	t.Cleanup(func() { segment.Remove(segment.POSIX, name, nil) })
	buf := make([]byte, 6)
	if n, err := out.Read(buf); err != nil || string(buf[:n]) != "ready\n" {
		t.Fatalf("creator: %q, %v", buf[:n], err)
	}
	info, err := segment.Stat(segment.POSIX, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Judge(info, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !j.InUse || j.Dead || len(j.Holders) != 1 || j.Holders[0].PID != pid ||
		strings.Join(j.Holders[0].Roles, ",") != "creator,maps" {
		t.Fatalf("creator alive: %+v; want in use by pid %d (creator, maps)", j, pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	tb, err := Scan()
	if err != nil {
		t.Fatal(err)
	}
	j = tb.Judge(info, nil)
	if j.InUse || !j.Dead || len(j.Holders) != 0 {
		t.Fatalf("creator killed: %+v; want dead", j)
	}
	obj := j.Object

	self, _ := segment.ProcessStart(os.Getpid())
	live := func(*segment.Segment) ([]Participant, error) {
		return []Participant{{PID: os.Getpid(), Start: self}, {PID: pid, Start: 1}}, nil
	}
	j = tb.Judge(info, Sources(nil, live))
	if !j.InUse || len(j.Holders) != 1 || j.Holders[0].PID != os.Getpid() || j.Holders[0].Roles[0] != "participant" {
		t.Fatalf("live participant: %+v", j)
	}
	broken := func(*segment.Segment) ([]Participant, error) { return nil, errors.New("table torn") }
	j = tb.Judge(info, broken)
	if j.InUse || j.Dead || !strings.Contains(j.Reason, "table torn") {
		t.Fatalf("unreadable participants: %+v; want kept with the reason", j)
	}

	if err := segment.Remove(segment.POSIX, name, nil); err != nil {
		t.Fatal(err)
	}
	s, err := segment.Create(segment.POSIX, name, 64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	tb, _ = Scan()
	if j = tb.Judge(info, nil); j.Object == obj {
		t.Fatalf("a segment created again under the name is the same Object")
	}
	segment.Remove(segment.POSIX, name, nil)
	tb, _ = Scan()
	if j = tb.Judge(info, nil); !j.Gone {
		t.Fatalf("removed: %+v; want Gone", j)
	}
}
