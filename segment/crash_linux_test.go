package segment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
	"golang.org/x/sys/unix"
)

func init() {
	proctest.Register("create-loop", childCreateLoop)
	proctest.Register("memfd-over-socket", childMemfdOverSocket)
}

// childCreateLoop creates, extends and removes one segment over and over
// until it is killed.
func childCreateLoop() int {
	b, _ := ParseBackend(os.Getenv("SEG_BACKEND"))
	name := os.Getenv("SEG_NAME")
	os.Stdout.WriteString("ready\n")
	for i := 0; ; i++ {
		s, err := Create(b, name, 256<<10, nil)
		if err != nil {
			return fail("%v", err)
		}
		for j := 0; j < 4; j++ {
			if _, err := s.AddRegion("r"+strconv.Itoa(j), uint32(j), 4096, 4096); err != nil {
				return fail("%v", err)
			}
		}
		s.Close()
		if err := Remove(b, name, nil); err != nil {
			return fail("%v", err)
		}
	}
}

// TestCreatorKilled SIGKILLs a process at random points of Create,
// AddRegion and Remove: what it leaves behind is either absent, not yet
// published (ErrNotReady) or a valid segment, never a corrupt one, and
// Remove cleans it up.
func TestCreatorKilled(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	for _, b := range []Backend{POSIX, SysV} {
		seen := map[string]int{}
		for i := 0; i < rounds; i++ {
			name := fmt.Sprintf("%s.%v.%d", testName(t), b, i)
			removeLater(t, b, name, nil)
			cmd := proctest.Command(t, "create-loop", "SEG_BACKEND="+b.String(), "SEG_NAME="+name)
			cmd.Stdout = nil
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			proctest.Start(t, cmd)
			var buf [6]byte
			if _, err := out.Read(buf[:]); err != nil {
				t.Fatalf("child did not start: %v", err)
			}
			time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			s, err := Open(b, name, nil)
			switch {
			case err == nil:
				if _, err := s.Regions(); err != nil {
					t.Fatalf("%v: valid header but bad TOC: %v", b, err)
				}
				if s.Info().CreatorAlive {
					t.Errorf("%v: killed creator reported alive", b)
				}
				s.Close()
				seen["valid"]++
			case errors.Is(err, ErrNotExist):
				seen["absent"]++
			case errors.Is(err, ErrNotReady):
				seen["unpublished"]++
			default:
				t.Fatalf("%v: after SIGKILL: %v", b, err)
			}
			if err := Remove(b, name, nil); err != nil && !errors.Is(err, ErrNotExist) {
				t.Fatalf("%v: Remove after SIGKILL: %v", b, err)
			}
		}
		t.Logf("%v: %v", b, seen)
	}
}

// childMemfdOverSocket receives a memfd over the Unix socket on fd 3
// (SCM_RIGHTS), attaches it and answers in the region "box".
func childMemfdOverSocket() int {
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(3, buf, oob, 0)
	if err != nil {
		return fail("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fail("control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fail("rights: %v", err)
	}
	f := os.NewFile(uintptr(fds[0]), "received")
	s, err := OpenMemfd(f, nil)
	f.Close() // OpenMemfd keeps its own descriptor
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	box, err := s.RegionBytes("box")
	if err != nil {
		return fail("%v", err)
	}
	copy(box, "via SCM_RIGHTS")
	return 0
}

func TestMemfdOverSCMRights(t *testing.T) {
	s := mustCreate(t, Memfd, testName(t), 64<<10, nil)
	if _, err := s.AddRegion("box", FourCC("BOX"), 64, 64); err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	defer mine.Close()
	cmd := proctest.Command(t, "memfd-over-socket")
	cmd.ExtraFiles = []*os.File{theirs}
	proctest.Start(t, cmd)
	theirs.Close()
	if err := unix.Sendmsg(int(mine.Fd()), []byte("x"), unix.UnixRights(int(s.File().Fd())), nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	box, _ := s.RegionBytes("box")
	if string(box[:14]) != "via SCM_RIGHTS" {
		t.Fatalf("box = %q", box[:14])
	}
}
