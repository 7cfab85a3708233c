package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/allocator"
	"github.com/shmkit/shmkit/segment"
)

// TestInspectAllocatorStats creates a segment holding a slab allocator with
// chunks in use and checks that inspect reports the per-class statistics,
// in text and in JSON.
func TestInspectAllocatorStats(t *testing.T) {
	name := fmt.Sprintf("cli.%d.slab", os.Getpid())
	cfg := allocator.Config{Classes: []allocator.Class{{Size: 64, Count: 8}, {Size: 4096, Count: 4}}}
	size, err := allocator.Size(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := segment.Create(segment.POSIX, name, int64(size)+64<<10, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close(); segment.Remove(segment.POSIX, name, nil) })
	if _, err := seg.AddRegion("pool", allocator.KindSlab, int64(size), 64); err != nil {
		t.Fatal(err)
	}
	mem, err := seg.RegionBytes("pool")
	if err != nil {
		t.Fatal(err)
	}
	a, err := allocator.New(mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, 60, 100} {
		if _, err := a.Alloc(n); err != nil {
			t.Fatal(err)
		}
	}

	out := mustShmctl(t, "inspect", name)
	if !strings.Contains(out, "allocator pool:") || !strings.Contains(out, "HIGH WATER") {
		t.Fatalf("inspect shows no allocator statistics:\n%s", out)
	}

	js := mustShmctl(t, "inspect", name, "-o", "json")
	var got struct {
		Regions []struct {
			Name      string                 `json:"name"`
			Kind      string                 `json:"kind"`
			Allocator []allocator.ClassStats `json:"allocator"`
			Error     string                 `json:"error"`
		} `json:"regions"`
	}
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(got.Regions) != 1 || got.Regions[0].Kind != "SLAB" || got.Regions[0].Error != "" {
		t.Fatalf("regions = %+v", got.Regions)
	}
	st := got.Regions[0].Allocator
	if len(st) != 2 {
		t.Fatalf("classes = %+v", st)
	}
	if st[0].Size != 64 || st[0].Total != 8 || st[0].InUse != 2 || st[0].Free != 6 {
		t.Fatalf("64 B class = %+v, want 2 of 8 in use", st[0])
	}
	if st[1].Size != 4096 || st[1].InUse != 1 || st[1].Free != 3 {
		t.Fatalf("4 KiB class = %+v, want 1 of 4 in use", st[1])
	}
}
