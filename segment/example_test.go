package segment_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shmkit/shmkit/segment"
)

func Example() {
	name := fmt.Sprintf("example.%d", os.Getpid())

	// The creator makes the segment and lays out its regions.
	s, err := segment.Create(segment.POSIX, name, 1<<20, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer segment.Remove(segment.POSIX, name, nil) // the name outlives processes: remove it
	defer s.Close()
	ring, err := s.AddRegion("requests", segment.FourCC("SPSC"), 64<<10, 4096)
	if err != nil {
		fmt.Println(err)
		return
	}
	head, _ := s.Uint64(ring.Offset)
	head.Store(42)

	// Another process (here: another attachment) opens it by name.
	peer, err := segment.Open(segment.POSIX, name, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	r, _ := peer.Region("requests")
	v, _ := peer.LoadUint64(r.Offset)
	fmt.Println(r.Name, segment.FourCCString(r.Kind), r.Length, v)
	// Output: requests SPSC 65536 42
}

func ExampleCreate() {
	name := fmt.Sprintf("example-create.%d", os.Getpid())
	s, err := segment.Create(segment.SysV, name, 64<<10, &segment.Options{Mode: 0o600})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer segment.Remove(segment.SysV, name, nil)
	defer s.Close()
	_, err = segment.Create(segment.SysV, name, 64<<10, nil)
	fmt.Println(s.Size(), s.Backend(), err != nil)
	// Output: 65536 sysv true
}

func ExampleOpen() {
	path := fmt.Sprintf("%s/example-open.%d.seg", os.TempDir(), os.Getpid())
	s, err := segment.Create(segment.File, path, 16<<10, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer segment.Remove(segment.File, path, nil)
	s.Close()

	ro, err := segment.Open(segment.File, path, &segment.Options{ReadOnly: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ro.Close()
	_, err = ro.Bytes(ro.DataOffset(), 8)
	fmt.Println(ro.Name() == filepath.Base(path), err)
	// Output: true segment: attached read-only
}

func ExampleSegment_AddRegion() {
	s, err := segment.Create(segment.Memfd, "example-regions", 1<<20, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close() // a memfd is freed with its last descriptor and mapping
	s.AddRegion("ctl", segment.FourCC("CTRL"), 64, 64)
	s.AddRegion("slab", segment.FourCC("SLAB"), 256<<10, 4096)
	rs, _ := s.Regions()
	for _, r := range rs {
		fmt.Printf("%-4s %s aligned=%v length %d\n", r.Name, segment.FourCCString(r.Kind), r.Offset%r.Align == 0, r.Length)
	}
	// Output:
	// ctl  CTRL aligned=true length 64
	// slab SLAB aligned=true length 262144
}

func ExampleRemove() {
	name := fmt.Sprintf("example-remove.%d", os.Getpid())
	s, _ := segment.Create(segment.POSIX, name, 64<<10, nil)
	s.Close()
	fmt.Println(segment.Remove(segment.POSIX, name, nil))
	_, err := segment.Open(segment.POSIX, name, nil)
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}

func ExampleOpenMemfd() {
	s, err := segment.Create(segment.Memfd, "example-memfd", 64<<10, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	r, _ := s.AddRegion("box", segment.FourCC("BOX"), 64, 64)
	box, _ := s.Bytes(r.Offset, r.Length)
	copy(box, "hello")

	// Hand s.File() to another process: cmd.ExtraFiles = []*os.File{s.File()}
	// (it arrives as fd 3: os.NewFile(3, "segment")), or unix.UnixRights over a
	// Unix socket. Here the same process attaches it a second time.
	peer, err := segment.OpenMemfd(s.File(), &segment.Options{ReadOnly: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	got := make([]byte, 5)
	peer.ReadAt(got, r.Offset)
	fmt.Println(string(got))
	// Output: hello
}
