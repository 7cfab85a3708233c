package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, b := range []Backend{POSIX, SysV, File} {
		for _, mode := range []os.FileMode{0, 0o640, 0o666} {
			name := testTarget(t, b) + ".m" + strconv.Itoa(int(mode))
			s := mustCreate(t, b, name, 8192, &Options{Mode: mode})
			want := mode
			if want == 0 {
				want = 0o600
			}
			if got := s.Info().Mode; got != want {
				t.Errorf("%v mode %v: got %v", b, mode, got)
			}
			s.Close()
			if err := Remove(b, name, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := Create(POSIX, testName(t), 8192, &Options{Mode: os.ModeSetuid | 0o600}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("setuid mode: %v", err)
	}
}

func TestSizes(t *testing.T) {
	for _, size := range []int64{0, -1, headerSize(DefaultTOCCapacity), MaxSize + 1, 1 << 62} {
		for _, b := range allBackends {
			if _, err := Create(b, testTarget(t, b), size, nil); !errors.Is(err, ErrInvalidSize) {
				t.Errorf("Create(%v, size %d): %v, want ErrInvalidSize", b, size, err)
			}
		}
	}
	for _, c := range []int{-1, MaxTOCCapacity + 1} {
		if _, err := Create(Memfd, testName(t), 1<<20, &Options{TOCCapacity: c}); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("TOC capacity %d: %v", c, err)
		}
	}
	// The smallest segment: header plus one byte.
	s := mustCreate(t, Memfd, testName(t), headerSize(1)+1, &Options{TOCCapacity: 1})
	if _, err := s.AddRegion("b", 0, 1, 1); err != nil {
		t.Fatal(err)
	}
}

func hugePagesFree() int {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "HugePages_Free:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func TestHugePagesFailClearly(t *testing.T) {
	if hugePagesFree() > 0 {
		t.Skip("this machine has huge pages reserved; the failure path cannot be seen")
	}
	for _, b := range allBackends {
		name := testTarget(t, b)
		removeLater(t, b, name, nil)
		_, err := Create(b, name, 4<<20, &Options{HugePages: true})
		if !errors.Is(err, ErrHugePages) {
			t.Errorf("%v: Create with huge pages: %v, want ErrHugePages", b, err)
			continue
		}
		t.Logf("%v: %v", b, err)
		if b != Memfd {
			if _, err := Open(b, name, nil); !errors.Is(err, ErrNotExist) {
				t.Errorf("%v: failed Create left something: %v", b, err)
			}
		}
	}
}

func TestPrefaultAndLock(t *testing.T) {
	for _, b := range allBackends {
		name := testTarget(t, b)
		s := mustCreate(t, b, name, 1<<20, &Options{Prefault: true, Lock: true})
		if b != Memfd {
			s2, err := Open(b, name, &Options{Prefault: true, Lock: true})
			if err != nil {
				t.Fatalf("%v: %v", b, err)
			}
			s2.Close()
			s3, err := Open(b, name, &Options{Prefault: true, ReadOnly: true})
			if err != nil {
				t.Fatalf("%v: %v", b, err)
			}
			s3.Close()
		}
		touch(s.mem, true) // the fallback path
		touch(s.mem, false)
	}
}

// TestOpenCorrupt damages live segments and checks Open refuses them.
func TestOpenCorrupt(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(mem []byte)
		want   error
	}{
		{"magic", func(m []byte) { m[1] = 'x' }, ErrBadMagic},
		{"unpublished", func(m []byte) { clear(m[:8]) }, ErrNotReady},
		{"version", func(m []byte) { m[hdrVersion] = 9 }, ErrVersion},
		{"checksum", func(m []byte) { m[hdrCreated] ^= 1 }, ErrCorrupt},
		{"toc-count", func(m []byte) { le.PutUint32(m[hdrTOCCount:], 1000) }, ErrCorrupt},
		{"toc-entry", func(m []byte) { m[hdrFixedSize+tocOffset] ^= 0x40 }, ErrCorrupt},
	} {
		name := testName(t) + "." + c.name
		s := mustCreate(t, POSIX, name, 16<<10, nil)
		if _, err := s.AddRegion("r", 0, 64, 64); err != nil {
			t.Fatal(err)
		}
		c.damage(s.mem)
		if _, err := Open(POSIX, name, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: Open: %v, want %v", c.name, err, c.want)
		}
		if _, err := Stat(POSIX, name, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: Stat: %v, want %v", c.name, err, c.want)
		}
	}
	// A foreign file under our prefix, and one that was never finished.
	for _, c := range []struct {
		data []byte
		want error
	}{{[]byte("hello, this is not a segment"), ErrBadMagic}, {nil, ErrNotReady}} {
		name := testName(t) + ".foreign" + strconv.Itoa(len(c.data))
		if err := os.WriteFile(posixPath(name), c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		removeLater(t, POSIX, name, nil)
		if _, err := Open(POSIX, name, nil); !errors.Is(err, c.want) {
			t.Errorf("Open(%q): %v, want %v", c.data, err, c.want)
		}
	}
	// A file segment moved to /dev/shm is not a POSIX segment.
	path := filepath.Join(t.TempDir(), "moved")
	s := mustCreate(t, File, path, 8192, nil)
	s.Close()
	data, _ := os.ReadFile(path)
	name := testName(t) + ".moved"
	os.WriteFile(posixPath(name), data, 0o600)
	removeLater(t, POSIX, name, nil)
	if _, err := Open(POSIX, name, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("file segment opened as posix: %v", err)
	}
}

func TestSysVKeys(t *testing.T) {
	name := testName(t)
	key := int32(0x5348_0000 | int32(os.Getpid()&0xffff))
	opts := &Options{SysVKey: key}
	s := mustCreate(t, SysV, name, 8192, opts)
	if s.Info().SysVKey != key {
		t.Fatalf("header key %#x, want %#x", s.Info().SysVKey, key)
	}
	if _, err := Open(SysV, name, nil); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open by the derived key: %v, want ErrNotExist", err)
	}
	s2, err := Open(SysV, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	// The same key under another name: a collision, refused.
	if _, err := Open(SysV, name+"x", opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a key that holds another name: %v", err)
	}
	if _, err := Create(SysV, name+"x", 8192, opts); !errors.Is(err, ErrExist) {
		t.Fatalf("Create on a used key: %v", err)
	}
	if err := Remove(SysV, name+"x", opts); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Remove under the wrong name: %v", err)
	}
	// Remove finds an explicit-key segment by the name in its header.
	if err := Remove(SysV, name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(SysV, name, opts); !errors.Is(err, ErrNotExist) {
		t.Fatalf("after Remove: %v", err)
	}
	// A foreign SysV segment is neither listed nor removed.
	id, err := unix.SysvShmGet(int(SysVKey(name+".foreign")), 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, "someone else's data")
	unix.SysvShmDetach(mem)
	if err := Remove(SysV, name+".foreign", nil); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Remove of a foreign segment: %v", err)
	}
	if _, err := Open(SysV, name+".foreign", nil); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("Open of a foreign segment: %v", err)
	}
	infos, _ := List()
	for _, i := range infos {
		if i.SysVID == id {
			t.Fatal("List reported a foreign SysV segment")
		}
	}
}

func TestRemoveFileRefusesOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(path, []byte("precious data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Remove(File, path, nil); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("Remove of a non-segment file: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the file was removed")
	}
}

func TestNotRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, dir + "/."} {
		if _, err := Open(File, p, nil); !errors.Is(err, ErrBadMagic) {
			t.Errorf("Open(%s): %v, want ErrBadMagic", p, err)
		}
	}
	if err := Remove(File, fifo, nil); !errors.Is(err, ErrBadMagic) {
		t.Errorf("Remove(fifo): %v", err)
	}
	name := testName(t)
	if err := unix.Mkfifo(posixPath(name), 0o600); err != nil {
		t.Fatal(err)
	}
	removeLater(t, POSIX, name, nil)
	if _, err := Open(POSIX, name, nil); !errors.Is(err, ErrBadMagic) {
		t.Errorf("Open(POSIX fifo): %v, want ErrBadMagic", err)
	}
	if infos, _ := List(dir); len(infos) > 0 {
		for _, i := range infos {
			if i.Path == fifo {
				t.Error("List reported a fifo")
			}
		}
	}
}
