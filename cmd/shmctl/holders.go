package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shmkit/shmkit/internal/procfs"
	"github.com/shmkit/shmkit/segment"
)

// holder is a process that keeps a segment alive, with the ways it holds
// it: "creator" (the process that created it still runs), "maps" (it maps
// the file), "open" (it has the file open), "attached" (SysV), "participant"
// (registered in the segment and alive).
type holder struct {
	PID   int      `json:"pid"`
	Roles []string `json:"roles"`
}

// participant is a process registered inside a segment, named by pid and
// start time (clock ticks after boot, as segment.ProcessStart reports it).
type participant struct {
	PID   int
	Start uint64
}

// participantSource reads the participants registered in a segment, such as
// the participant table of a channel. Each package that keeps such a table
// gets one file here that appends its reader in an init function; gc and rm
// then count its live participants as holders. A source returns nil when the
// segment holds no table of its kind, and an error when the table cannot be
// read (gc then keeps the segment).
type participantSource func(seg *segment.Segment) ([]participant, error)

var participantSources []participantSource

// judgement is what gc and rm conclude about one segment from one /proc
// scan.
type judgement struct {
	obj     object
	Holders []holder `json:"holders,omitempty"`
	// Unseen counts SysV attachments by processes this one cannot see
	// (another pid namespace, or hidden /proc).
	Unseen int `json:"unseen_attachments,omitempty"`
	// Unreadable counts the processes whose /proc entries could not be
	// read and that could access the segment: they may hold it. gc keeps
	// such a segment; rm, asked by name, does not count them.
	Unreadable int `json:"unreadable,omitempty"`
	// InUse is true when some process holds the segment (Holders or
	// Unseen).
	InUse bool `json:"-"`
	// Dead is true when nothing holds the segment and its header says it
	// is a shmkit segment gc may remove.
	Dead bool `json:"-"`
	// Gone is true when the segment no longer exists.
	Gone   bool   `json:"-"`
	Reason string `json:"reason"`
}

// judge decides whether anything still holds the segment info describes
// (info may carry a validation error in info.Err). A segment is dead when
// its creator is dead (pid plus start time), no process maps it or has it
// open (POSIX, File) or is attached to it (SysV, shm_nattch), and no live
// participant is registered in it. Anything that cannot be established
// keeps it: a newer layout version, a foreign or corrupt header, processes
// whose /proc entries are unreadable.
func judge(pt *procTable, info segment.Info) judgement {
	var j judgement
	obj, err := pt.locate(info)
	if err != nil {
		j.Gone = errors.Is(err, segment.ErrNotExist)
		j.Reason = err.Error()
		return j
	}
	j.obj = obj
	creator, start := 0, uint64(0)
	midCreate := false
	untouched := ""
	switch {
	case info.Err == nil:
		creator, start = info.CreatorPID, info.CreatorStart
	case errors.Is(info.Err, segment.ErrNotReady):
		midCreate = true
		if info.Backend != segment.SysV {
			creator, start = rawCreator(info.Path)
		}
	case errors.Is(info.Err, segment.ErrVersion):
		untouched = fmt.Sprintf("not touched: a layout version this shmctl does not read (%v)", info.Err)
	case errors.Is(info.Err, segment.ErrBadMagic):
		untouched = fmt.Sprintf("not touched: not a shmkit segment (%v)", info.Err)
	case errors.Is(info.Err, segment.ErrCorrupt):
		untouched = fmt.Sprintf("not touched: cannot validate it (%v); `shmctl rm` removes it", info.Err)
	default:
		untouched = fmt.Sprintf("not touched: cannot validate it (%v)", info.Err)
	}

	add := func(pid int, role string) {
		for i := range j.Holders {
			if j.Holders[i].PID == pid {
				if !slices.Contains(j.Holders[i].Roles, role) {
					j.Holders[i].Roles = append(j.Holders[i].Roles, role)
				}
				return
			}
		}
		j.Holders = append(j.Holders, holder{PID: pid, Roles: []string{role}})
	}
	if creator > 0 && procfs.Alive(creator, start) {
		add(creator, "creator")
	}
	mappers := pt.mappers(obj)
	for _, pid := range mappers {
		if obj.sysv() {
			add(pid, "attached")
		} else {
			add(pid, "maps")
		}
	}
	for _, pid := range pt.openers(obj) {
		add(pid, "open")
	}
	if n := pt.attachments(obj); n > len(mappers) {
		j.Unseen = n - len(mappers)
	}
	j.Unreadable = len(pt.blindTo(obj))
	if info.Err == nil {
		parts, err := readParticipants(info)
		if err != nil {
			j.Reason = fmt.Sprintf("kept: cannot read its participants (%v)", err)
			return j
		}
		for _, p := range parts {
			if procfs.Alive(p.PID, p.Start) {
				add(p.PID, "participant")
			}
		}
	}
	slices.SortFunc(j.Holders, func(a, b holder) int { return a.PID - b.PID })

	switch {
	case len(j.Holders) > 0 || j.Unseen > 0:
		j.InUse = true
		var parts []string
		if len(j.Holders) > 0 {
			parts = append(parts, holdersText(j.Holders))
		}
		if j.Unseen > 0 {
			parts = append(parts, fmt.Sprintf("%d attachment(s) by processes not visible here", j.Unseen))
		}
		if j.Unreadable > 0 {
			parts = append(parts, fmt.Sprintf("perhaps %d process(es) whose /proc entries this user cannot read", j.Unreadable))
		}
		what := "held by "
		if midCreate {
			what = "being created (header not yet published); held by "
		}
		j.Reason = what + strings.Join(parts, ", ")
	case untouched != "":
		j.Reason = untouched
	case j.Unreadable > 0:
		j.Reason = fmt.Sprintf("kept: %d process(es) whose /proc entries this user cannot read could map it; run as root to know",
			j.Unreadable)
	case midCreate && creator > 0:
		j.Dead = true
		j.Reason = fmt.Sprintf("header never published; creator pid %d died mid-create and nothing holds it", creator)
	case midCreate:
		j.Dead = true
		j.Reason = "header never published; its creator is gone and nothing holds it"
	case obj.sysv():
		j.Dead = true
		j.Reason = fmt.Sprintf("creator pid %d dead, no attachments, no live participant", creator)
	default:
		j.Dead = true
		j.Reason = fmt.Sprintf("creator pid %d dead, no process maps it or has it open, no live participant", creator)
	}
	return j
}

// readParticipants asks every participantSource about the segment, which
// it attaches read-only for the purpose.
func readParticipants(info segment.Info) ([]participant, error) {
	if len(participantSources) == 0 {
		return nil, nil
	}
	name, opts := info.Name, &segment.Options{ReadOnly: true}
	switch info.Backend {
	case segment.File:
		name = info.Path
	case segment.SysV:
		opts.SysVKey = info.SysVKey
	}
	seg, err := segment.Open(info.Backend, name, opts)
	if err != nil {
		return nil, err
	}
	defer seg.Close()
	var all []participant
	for _, src := range participantSources {
		ps, err := src(seg)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

// holdersText renders holders as "pid 12 (creator, maps), pid 40 (maps)".
func holdersText(hs []holder) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("pid %d (%s)", h.PID, strings.Join(h.Roles, ", "))
	}
	return strings.Join(parts, ", ")
}
