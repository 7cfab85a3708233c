package segment

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proctest"
)

const growEntries = 255

func init() { proctest.Register("toc-reader", childTOCReader) }

// childTOCReader attaches while the parent appends regions and re-reads the
// TOC until it has them all: every read must validate, never shrink, and
// hold exactly the entries the parent writes.
func childTOCReader() int {
	s, err := Open(POSIX, os.Getenv("SEG_NAME"), nil)
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	sync, _ := s.Region("sync")
	flag, err := s.Uint32(sync.Offset)
	if err != nil {
		return fail("%v", err)
	}
	flag.Store(1)
	deadline := time.Now().Add(time.Minute) // a guard against hanging, not a timing check
	last, reads := 0, 0
	for last < growEntries+1 {
		rs, err := s.Regions()
		if err != nil {
			return fail("read %d: %v", reads, err)
		}
		if len(rs) < last {
			return fail("TOC shrank from %d to %d", last, len(rs))
		}
		for i, r := range rs[1:] {
			if r.Name != fmt.Sprintf("r%d", i) || r.Kind != uint32(i) || r.Length != int64(i+1) {
				return fail("entry %d = %+v", i+1, r)
			}
		}
		last = len(rs)
		reads++
		if time.Now().After(deadline) {
			return fail("saw only %d entries", last)
		}
		runtime.Gosched()
	}
	fmt.Fprintf(os.Stderr, "child: %d validated reads\n", reads)
	return 0
}

func TestTOCGrowsWhileAttached(t *testing.T) {
	name := testName(t)
	s := mustCreate(t, POSIX, name, 1<<20, &Options{TOCCapacity: growEntries + 1})
	sync, err := s.AddRegion("sync", 0, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	flag, _ := s.Uint32(sync.Offset)
	cmd := proctest.Command(t, "toc-reader", "SEG_NAME="+name)
	proctest.Start(t, cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for flag.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("reader exited before attaching: %v", err)
		default:
			runtime.Gosched()
		}
	}
	for i := 0; i < growEntries; i++ {
		if _, err := s.AddRegion(fmt.Sprintf("r%d", i), uint32(i), int64(i+1), 8); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("reader: %v", err)
	}
	if _, err := s.AddRegion("full", 0, 1, 1); err == nil {
		t.Fatal("AddRegion past capacity succeeded")
	}
}
