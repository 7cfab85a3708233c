package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/segment"
)

// deadFileSegment makes a File segment at path whose creator (a child) is
// SIGKILLed: gc judges it dead.
func deadFileSegment(t *testing.T, path string) {
	t.Helper()
	c := startHolder(t, "file", path, "create")
	c.kill()
	t.Cleanup(func() { os.Remove(path) })
}

// runGCHere runs gc in this process (so gcBeforeRemove applies) and
// decodes its JSON.
func runGCHere(t *testing.T, f gcFlags) gcOut {
	t.Helper()
	f.output = "json"
	var buf bytes.Buffer
	if err := runGC(&buf, f); err != nil {
		t.Fatalf("gc: %v\n%s", err, buf.String())
	}
	var out gcOut
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("gc -o json: %v\n%s", err, buf.String())
	}
	return out
}

// TestGCDirSwappedParent (issue 20, defect 5): the parent of --dir is
// swapped for a symlink to another directory holding a dead segment of the
// same name, between gc's judgement and its removal; gc removes the entry
// of the directory it opened and never the file outside it. An entry
// swapped for a symlink to an outside file is kept, and the outside file
// too. A parent that others can write is warned about.
func TestGCDirSwappedParent(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "p", "d")
	victimDir := filepath.Join(base, "v", "d")
	for _, d := range []string{dir, victimDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(base, "p"), 0o777); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("gcd.%d.seg", os.Getpid())
	deadFileSegment(t, filepath.Join(dir, name))
	victim := filepath.Join(victimDir, name)
	deadFileSegment(t, victim)
	t.Cleanup(func() { gcBeforeRemove = nil })

	swapped := false
	gcBeforeRemove = func(info segment.Info) {
		if swapped {
			return
		}
		swapped = true
		if err := os.Rename(filepath.Join(base, "p"), filepath.Join(base, "p.orig")); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(filepath.Join(base, "v"), filepath.Join(base, "p")); err != nil {
			t.Error(err)
		}
	}
	out := runGCHere(t, gcFlags{dirs: []string{dir}, backends: []string{"file"}})
	if !swapped {
		t.Fatalf("gc removed nothing: %+v", out)
	}
	if len(out.Segments) != 1 || out.Segments[0].Action != "removed" {
		t.Fatalf("gc: %+v; want the one segment removed", out.Segments)
	}
	if !fileExists(victim) {
		t.Fatal("gc removed the file outside --dir that a swapped parent pointed to")
	}
	if fileExists(filepath.Join(base, "p.orig", "d", name)) {
		t.Fatal("gc did not remove the dead segment of the directory it opened")
	}
	warned := false
	for _, w := range out.Warnings {
		warned = warned || strings.Contains(w, filepath.Join(base, "p")+" is writable by group or others")
	}
	if !warned {
		t.Errorf("no warning about the parent others can write: %q", out.Warnings)
	}

	// The entry itself swapped for a symlink to the victim: kept.
	os.Remove(filepath.Join(base, "p"))
	if err := os.Rename(filepath.Join(base, "p.orig"), filepath.Join(base, "p")); err != nil {
		t.Fatal(err)
	}
	deadFileSegment(t, filepath.Join(dir, name))
	gcBeforeRemove = func(info segment.Info) {
		os.Remove(info.Path)
		if err := os.Symlink(victim, info.Path); err != nil {
			t.Error(err)
		}
	}
	out = runGCHere(t, gcFlags{dirs: []string{dir}, backends: []string{"file"}})
	if len(out.Segments) != 1 || out.Segments[0].Action != "keep" || !strings.Contains(out.Segments[0].Reason, "replaced") {
		t.Fatalf("entry swapped for a symlink: %+v; want kept as replaced", out.Segments)
	}
	if !fileExists(victim) {
		t.Fatal("gc removed the file a swapped entry pointed to")
	}
	if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
		t.Fatalf("gc removed the symlink: %v", err)
	}
}

// TestGCOwnSegmentsOnly: gc run by root keeps another user's dead segment
// unless --all-users.
func TestGCOwnSegmentsOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a segment to another user needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, fmt.Sprintf("gcd.%d.other", os.Getpid()))
	deadFileSegment(t, path)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	out := runGCHere(t, gcFlags{dirs: []string{dir}, backends: []string{"file"}})
	if len(out.Segments) != 1 || out.Segments[0].Action != "keep" || !strings.Contains(out.Segments[0].Reason, "--all-users") ||
		!fileExists(path) {
		t.Fatalf("another user's dead segment: %+v; want kept, naming --all-users", out.Segments)
	}
	out = runGCHere(t, gcFlags{dirs: []string{dir}, backends: []string{"file"}, allUsers: true})
	if len(out.Segments) != 1 || out.Segments[0].Action != "removed" || fileExists(path) {
		t.Fatalf("--all-users: %+v; want removed", out.Segments)
	}
}
