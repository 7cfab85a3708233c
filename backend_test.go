package shmkit_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shmkit/shmkit"
)

// TestBackends moves a message through a channel on every backend.
func TestBackends(t *testing.T) {
	ctx := ctxT(t)
	roundTrip := func(t *testing.T, creator, joiner *shmkit.Channel) {
		t.Helper()
		sub, err := joiner.Subscriber()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := creator.Publisher()
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Send(ctx, []byte("backend")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := sub.ReceiveInto(ctx, buf)
		if err != nil || string(buf[:n]) != "backend" {
			t.Fatalf("got %q, %v", buf[:n], err)
		}
	}
	for _, b := range []shmkit.Backend{shmkit.POSIX, shmkit.SysV, shmkit.File} {
		t.Run(b.String(), func(t *testing.T) {
			name := chanName(t)
			if b == shmkit.File {
				name = filepath.Join(t.TempDir(), "chan")
			}
			ch, err := shmkit.Create(name, shmkit.Config{Backend: b, MaxMessage: 64, RingDepth: 4})
			if err != nil {
				t.Fatal(err)
			}
			peer, err := shmkit.Open(name, shmkit.WithBackend(b))
			if err != nil {
				ch.Close()
				t.Fatal(err)
			}
			roundTrip(t, ch, peer)
			peer.Close()
			ch.Close()
			if _, err := shmkit.Open(name, shmkit.WithBackend(b)); !errors.Is(err, shmkit.ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after the last participant left: %v, want ErrNotExist", err)
			}
		})
	}
	t.Run("memfd", func(t *testing.T) {
		ch, err := shmkit.Create("memfd", shmkit.Config{Backend: shmkit.Memfd, MaxMessage: 64, RingDepth: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		peer, err := shmkit.OpenFile(ch.File())
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		roundTrip(t, ch, peer)
	})
}
