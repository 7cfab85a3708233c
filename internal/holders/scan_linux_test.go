package holders

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestParseMaps checks the /proc/PID/maps parser on the line shapes that
// matter: a file mapping, a deleted one, a SysV attachment, anonymous
// memory.
func TestParseMaps(t *testing.T) {
	pt := &Table{files: map[uint64][]fileMap{}, sysv: map[int][]int{}}
	pt.parseMaps(42, []byte(`7f0000000000-7f0000010000 rw-s 00000000 00:1a 1234                       /dev/shm/shmkit.a b
7f0000010000-7f0000020000 rw-s 00000000 00:1a 99                         /dev/shm/shmkit.gone (deleted)
7f0000020000-7f0000030000 rw-s 00000000 00:01 65538                      /SYSV1a2b3c4d (deleted)
7f0000030000-7f0000040000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
`))
	want := fileMap{pid: 42, dev: unix.Mkdev(0, 0x1a), path: "/dev/shm/shmkit.a b"}
	if got := pt.files[1234]; len(got) != 1 || got[0] != want {
		t.Errorf("file mapping: %+v, want %+v", got, want)
	}
	if got := pt.files[99]; len(got) != 1 || got[0].path != "/dev/shm/shmkit.gone" {
		t.Errorf("deleted file mapping: %+v", got)
	}
	if got := pt.sysv[65538]; !slices.Equal(got, []int{42}) {
		t.Errorf("SysV attachment: %v", got)
	}
	if len(pt.files) != 2 || len(pt.sysv) != 1 {
		t.Errorf("anonymous mappings recorded: %v %v", pt.files, pt.sysv)
	}
	o := Object{dev: unix.Mkdev(0, 0x1a), ino: 1234, path: "/elsewhere"}
	if got := pt.mappers(o); !slices.Equal(got, []int{42}) {
		t.Errorf("mappers by device and inode: %v", got)
	}
	o.dev = 7
	if got := pt.mappers(o); len(got) != 0 {
		t.Errorf("mappers of another device's inode: %v", got)
	}
}

// FuzzParseMaps: no maps content makes the parser panic, and every
// recorded mapping names a real inode.
func FuzzParseMaps(f *testing.F) {
	f.Add([]byte("7f00-7f10 rw-s 00000000 00:1a 1234 /dev/shm/shmkit.a\n"))
	f.Add([]byte("7f00-7f10 rw-s 00000000 00:01 65538 /SYSV1a2b3c4d (deleted)\n"))
	f.Add([]byte("7f00-7f10 rw-s 0 zz:1a 12 /x\n a b c d e f\n"))
	f.Fuzz(func(t *testing.T, maps []byte) {
		pt := &Table{files: map[uint64][]fileMap{}, sysv: map[int][]int{}}
		pt.parseMaps(7, maps)
		for ino, ms := range pt.files {
			for _, m := range ms {
				if ino == 0 || m.pid != 7 || strings.HasSuffix(m.path, " (deleted)") {
					t.Fatalf("inode %d: %+v", ino, m)
				}
			}
		}
	})
}
