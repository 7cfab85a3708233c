package shmkit_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
	"golang.org/x/sys/unix"
)

func init() { extraChildren["dialer"] = childDialer }

// childDialer joins the private channel at ADDR. With EXPECT=refused it
// succeeds only if the owner refuses it; otherwise it checks the memfd is
// sealed, receives one message and prints it.
func childDialer() int {
	ch, err := shmkit.Dial(env("ADDR"), shmkit.WithOwner("0")) // the server runs as root
	if env("EXPECT") == "refused" {
		if errors.Is(err, shmkit.ErrRefused) {
			fmt.Print("refused")
			return 0
		}
		return fail("dialer (uid %d): %v, want ErrRefused", os.Getuid(), err)
	}
	if err != nil {
		return fail("dialer: %v", err)
	}
	defer ch.Close()
	seals, err := unix.FcntlInt(ch.File().Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&(unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL) != unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL {
		return fail("dialer: memfd seals %#x (%v)", seals, err)
	}
	s, err := ch.Subscriber()
	if err != nil {
		return fail("dialer: %v", err)
	}
	smp, err := s.Receive(childCtx())
	if err != nil {
		return fail("dialer: %v", err)
	}
	fmt.Printf("got %s", smp.Bytes())
	smp.Release()
	return 0
}

// copyExe copies the test binary where another uid can run it.
func copyExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "shmkit-private-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "shmkit.test")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestPrivateMode(t *testing.T) {
	addr := fmt.Sprintf("@shmkit-test-%d", os.Getpid())
	srv, err := shmkit.Listen(addr, shmkit.Config{MaxMessage: 64, RingDepth: 8}, shmkit.Access{UIDs: []int{os.Getuid()}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Channel.File() == nil {
		t.Fatal("a private channel has no memfd")
	}

	// A peer running as uid 65534 is refused.
	if os.Getuid() == 0 && os.Getuid() != 65534 {
		cmd := proctest.Command(t, "dialer", "ADDR="+addr, "EXPECT=refused")
		cmd.Path, cmd.Args[0] = copyExe(t), "shmkit.test"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Run(); err != nil || out.String() != "refused" {
			t.Fatalf("uid 65534 peer: %v, output %q", err, out.String())
		}
	} else {
		t.Log("not root: the refused-uid case needs setuid; skipped")
	}

	// An admitted peer receives.
	cmd := proctest.Command(t, "dialer", "ADDR="+addr)
	out := &strings.Builder{}
	cmd.Stdout = out
	proctest.Start(t, cmd)
	waitFor(t, "the peer's subscriber", func() bool { return count(t, srv.Channel, "subscriber") == 1 })
	pub, err := srv.Channel.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(ctxT(t), []byte("over shared memory")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || out.String() != "got over shared memory" {
		t.Fatalf("admitted peer: %v, output %q", err, out.String())
	}
	// Its connection closed when it exited: it is gone from the table.
	waitFor(t, "the peer to be cleaned", func() bool { return count(t, srv.Channel, "subscriber") == 0 })
	pub.Close()
	poolWhole(t, srv.Channel)
}
