package segment

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCreateRemove measures a full segment life cycle (create with
// reservation, header write, close, remove) of a 1 MiB segment per backend.
func BenchmarkCreateRemove(b *testing.B) {
	for _, be := range allBackends {
		b.Run(be.String(), func(b *testing.B) {
			dir := b.TempDir()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				name := fmt.Sprintf("%s.%d", testName(b), i)
				if be == File {
					name = filepath.Join(dir, name)
				}
				s, err := Create(be, name, 1<<20, nil)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
				if be != Memfd {
					if err := Remove(be, name, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkOpenClose measures attaching an existing 1 MiB segment with 16
// regions: map, validate header and TOC, unmap.
func BenchmarkOpenClose(b *testing.B) {
	for _, be := range allBackends {
		b.Run(be.String(), func(b *testing.B) {
			name := testTarget(b, be)
			s := mustCreate(b, be, name, 1<<20, nil)
			for i := 0; i < 16; i++ {
				if _, err := s.AddRegion(fmt.Sprintf("r%d", i), FourCC("BYTE"), 4096, 64); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				var s2 *Segment
				var err error
				if be == Memfd {
					s2, err = OpenMemfd(s.File(), nil)
				} else {
					s2, err = Open(be, name, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				s2.Close()
			}
		})
	}
}

// BenchmarkAccess compares a checked atomic-word lookup (Uint64) and a
// region lookup by name against a plain atomic load of a word obtained
// once; "x-baseline" is the ratio to that load, measured in the same run.
func BenchmarkAccess(b *testing.B) {
	s := mustCreate(b, Memfd, testName(b), 1<<20, nil)
	for i := 0; i < 16; i++ {
		if _, err := s.AddRegion(fmt.Sprintf("r%d", i), FourCC("BYTE"), 4096, 64); err != nil {
			b.Fatal(err)
		}
	}
	off := s.DataOffset()
	w, _ := s.Uint64(off)
	// baselineNs times n plain atomic loads of w, in the same run.
	baselineNs := func(n int) float64 {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			w.Load()
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(n)
	}
	b.Run("Uint64", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Uint64(off); err != nil {
				b.Fatal(err)
			}
		}
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per/max(baselineNs(b.N), 0.01), "x-baseline")
	})
	b.Run("Region", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Region("r15"); err != nil {
				b.Fatal(err)
			}
		}
		per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(per/max(baselineNs(b.N), 0.01), "x-baseline")
	})
}
