package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// gcEntry is one segment in `shmctl gc -o json`: what gc did and why.
type gcEntry struct {
	Backend segment.Backend `json:"backend"`
	Name    string          `json:"name"`
	Path    string          `json:"path,omitempty"`
	SysVKey int32           `json:"sysv_key,omitempty"`
	SysVID  int             `json:"sysv_id,omitempty"`
	// Action is "keep", "remove" (--dry-run: would be removed), "removed"
	// or "failed" (the reason says why).
	Action string `json:"action"`
	judgement
	info segment.Info
	dir  *gcDir // the --dir a File segment was found in (nil otherwise)
}

// errReplaced: the directory entry gc was about to remove is no longer the
// file it judged.
var errReplaced = errors.New("replaced by another object of that name meanwhile; run gc again")

type gcOut struct {
	DryRun   bool      `json:"dry_run"`
	Segments []gcEntry `json:"segments"`
	Warnings []string  `json:"warnings,omitempty"`
}

// gcFlags are the flags of `shmctl gc`.
type gcFlags struct {
	dryRun   bool
	output   string
	dirs     []string
	matches  []string
	backends []string
	allUsers bool
}

func init() {
	var f gcFlags
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--match GLOB] [--backend posix,sysv,file] [--dir DIR]... [-o json]",
		Short: "Remove segments whose creator and participants are all dead",
		Long: `gc removes the shmkit segments nothing holds any more: the creator is dead
(pid and start time, so a reused pid does not count), no process maps the
segment or has it open (POSIX in /dev/shm, File in the --dir directories:
read from /proc/*/maps and /proc/*/fd), nothing is attached (SysV:
shm_nattch), and no live participant is registered in it. A segment caught
mid-create (header not yet published) is left alone while its creator or any
process holds it. Only the caller's own segments are removed (root's, when
root runs it) unless --all-users. Segments with a corrupt or foreign header, or a layout
version this shmctl does not read, are never touched. Processes whose /proc
entries cannot be read may hold anything they can access, so the segments
they could reach are kept: run gc as root for a complete view.

Each segment is printed with the decision and its reason. Holders are read
twice, once to plan and again just before each removal.

A --dir directory is opened once (each component with O_NOFOLLOW) and
listed and cleaned through that descriptor: an entry is removed (unlinkat)
only if it is still the regular file judged dead and starts with the shmkit
magic, read through a descriptor opened without following symlinks. gc warns
when another user can write a directory above DIR.`,
		Example: `  shmctl gc --dry-run                 # what would be removed, and why; changes nothing
  shmctl gc                           # remove dead segments on POSIX and SysV
  shmctl gc --dir /var/lib/app/shm    # file segments in that directory too
  shmctl gc --match 'orders.*' --backend posix -o json`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: oneLine(func(cmd *cobra.Command, _ []string) error {
			return runGC(cmd.OutOrStdout(), f)
		}),
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be removed and why; remove nothing")
	fl.StringArrayVar(&f.dirs, "dir", nil, "also collect file segments in this directory (repeatable)")
	_ = cmd.MarkFlagDirname("dir")
	fl.StringArrayVar(&f.matches, "match", nil, "only segments whose name matches this glob (repeatable)")
	fl.BoolVar(&f.allUsers, "all-users", false, "collect every user's dead segments (default: only the caller's own)")
	fl.StringSliceVar(&f.backends, "backend", []string{"posix", "sysv", "file"}, "backends to collect, comma-separated")
	addOutputFlag(cmd, &f.output)
	registerBackendCompletion(cmd, "backend")
	rootCmd.AddCommand(cmd)
}

func runGC(w io.Writer, f gcFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	want := map[segment.Backend]bool{}
	for _, s := range f.backends {
		b, err := segment.ParseBackend(strings.TrimSpace(s))
		if err != nil || b == segment.Memfd {
			return fmt.Errorf("invalid --backend %q (want posix, sysv or file)", s)
		}
		want[b] = true
	}
	for _, m := range f.matches {
		if _, err := filepath.Match(m, ""); err != nil {
			return fmt.Errorf("invalid --match %q: %w", m, err)
		}
	}
	if len(f.dirs) > 0 && !want[segment.File] {
		return fmt.Errorf("--dir names file segments, but --backend leaves out file")
	}
	out := gcOut{DryRun: f.dryRun, Segments: []gcEntry{}}
	var dirs []*gcDir
	defer func() {
		for _, d := range dirs {
			d.close()
		}
	}()
	byList := map[string]*gcDir{}
	var listPaths []string
	for _, arg := range f.dirs {
		d, warnings, err := openGCDir(arg)
		if err != nil {
			return err // an unreadable --dir: nothing done yet
		}
		dirs = append(dirs, d)
		out.Warnings = append(out.Warnings, warnings...)
		byList[d.listPath()] = d
		listPaths = append(listPaths, d.listPath())
	}
	infos, err := segment.List(listPaths...)
	if err != nil {
		return err // an unreadable --dir: nothing done yet
	}
	pt, err := scanProcs()
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	for _, info := range infos {
		if !want[info.Backend] || !matchAny(f.matches, info.Name) {
			continue
		}
		var dir *gcDir
		if info.Backend == segment.File {
			dir = byList[filepath.Dir(info.Path)]
			if dir == nil {
				continue
			}
			info.Path = filepath.Join(dir.path, filepath.Base(info.Path))
		}
		e := gcEntry{Backend: info.Backend, Name: info.Name, Path: info.Path, SysVKey: info.SysVKey,
			SysVID: info.SysVID, info: info, dir: dir, judgement: judge(pt, info)}
		if owner := e.Object.Owner(); e.Dead && !f.allUsers && owner != euid {
			e.Dead = false
			e.Reason = fmt.Sprintf("dead, but owned by uid %d, not this user (uid %d): --all-users collects it", owner, euid)
		}
		switch {
		case e.Gone:
			continue // removed by someone else since it was listed
		case e.Dead:
			e.Action = "remove"
		default:
			e.Action = "keep"
		}
		out.Segments = append(out.Segments, e)
	}
	if blind := pt.Blind(); len(blind) > 0 {
		if pt.BlindCounted() {
			out.Warnings = append(out.Warnings, fmt.Sprintf("the maps or descriptors of %d process(es) could not be read "+
				"(not root?): segments they may access are kept; run gc as root to see them", len(blind)))
		} else {
			out.Warnings = append(out.Warnings, fmt.Sprintf("the maps of pid(s) %s could not be read even with "+
				"CAP_SYS_PTRACE (non-dumpable, or another user namespace); they are assumed to hold no segment", pidList(blind, 8)))
		}
	}
	if note := holders.PIDNamespaceNote(); note != "" {
		out.Warnings = append(out.Warnings, note)
	}

	failed := 0
	if !f.dryRun {
		failed = removeDead(out.Segments)
	}
	if err := printGC(w, f.output, out); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("gc: %d removal(s) failed (see the reasons above)", failed)
	}
	return nil
}

// removeDead removes the entries judged dead, after a second /proc scan
// confirms that each is still dead and still the same object. It returns
// the number of removals that failed.
func removeDead(entries []gcEntry) int {
	dead := 0
	for _, e := range entries {
		if e.Dead {
			dead++
		}
	}
	if dead == 0 {
		return 0
	}
	pt, err := scanProcs()
	failed := 0
	for i := range entries {
		e := &entries[i]
		if !e.Dead {
			continue
		}
		if err != nil {
			e.Action, e.Reason = "failed", err.Error()
			failed++
			continue
		}
		again := judge(pt, e.info)
		switch {
		case again.Gone:
			e.Action, e.Reason = "keep", "removed by someone else meanwhile"
			continue
		case again.Object != e.Object:
			e.Action, e.Reason = "keep", "replaced by another object of that name meanwhile; run gc again"
			continue
		case !again.Dead:
			e.Action, e.judgement = "keep", again
			e.Reason = "came alive meanwhile: " + again.Reason
			continue
		}
		if gcBeforeRemove != nil {
			gcBeforeRemove(e.info)
		}
		var err error
		if e.dir != nil {
			err = e.dir.remove(filepath.Base(e.info.Path), again.Object)
		} else {
			err = removeSegment(e.info)
		}
		if errors.Is(err, errReplaced) {
			e.Action, e.Reason = "keep", err.Error()
			continue
		}
		if err != nil {
			e.Action, e.Reason = "failed", err.Error()
			failed++
			continue
		}
		e.Action = "removed"
	}
	return failed
}

// gcBeforeRemove, when set (by tests), runs just before each removal: the
// window in which a swapped directory would redirect a removal by path.
var gcBeforeRemove func(segment.Info)

// removeSegment removes the segment info describes.
func removeSegment(info segment.Info) error {
	switch info.Backend {
	case segment.File:
		return segment.Remove(segment.File, info.Path, nil)
	case segment.SysV:
		return segment.Remove(segment.SysV, info.Name, &segment.Options{SysVKey: info.SysVKey})
	}
	return segment.Remove(info.Backend, info.Name, nil)
}

// pidList renders up to max pids, "1, 2, 3 and 4 more".
func pidList(pids []int, max int) string {
	var parts []string
	for i, p := range pids {
		if i == max {
			return strings.Join(parts, ", ") + fmt.Sprintf(" and %d more", len(pids)-max)
		}
		parts = append(parts, fmt.Sprint(p))
	}
	return strings.Join(parts, ", ")
}

func matchAny(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := filepath.Match(g, name); ok {
			return true
		}
	}
	return false
}

func printGC(w io.Writer, output string, out gcOut) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tBACKEND\tNAME\tREASON")
	counts := map[string]int{}
	for _, e := range out.Segments {
		counts[e.Action]++
		action := e.Action
		if action == "remove" {
			action = "would remove"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", action, e.Backend, e.Name, e.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, note := range out.Warnings {
		fmt.Fprintf(w, "warning: %s\n", note)
	}
	var err error
	if out.DryRun {
		_, err = fmt.Fprintf(w, "dry run: %d would be removed, %d kept; nothing changed\n", counts["remove"], counts["keep"])
	} else {
		_, err = fmt.Fprintf(w, "%d removed, %d kept, %d failed\n", counts["removed"], counts["keep"], counts["failed"])
	}
	return err
}
