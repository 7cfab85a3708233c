// Package holders decides whether anything still holds a shmkit segment,
// from one pass over /proc: the creator (pid and start time, so a reused pid
// does not count), processes that map the segment or have it open (POSIX and
// File), SysV attachments (shm_nattch), and live participants registered in
// the segment (read through a Source the caller passes, so this package
// needs nothing of the packages that keep such tables).
//
// Users: shmctl gc, rm, inspect and doctor (cmd/shmctl), and the root
// package shmkit, whose Create and OpenOrCreate take over a channel whose
// every holder is dead. It imports only segment and internal/procfs; it
// must never import the root package.
//
// Typical use:
//
//	t, err := holders.Scan()              // one pass over /proc
//	j := t.Judge(info, src)               // info from segment.Stat/List
//	switch {
//	case j.Dead:  // nothing holds it: it may be removed or taken over
//	case j.InUse: // j.Holders (and j.Reason) name who holds it
//	default:      // kept for j.Reason (foreign header, unreadable /proc ...)
//	}
//
// Off Linux, Scan fails with segment.ErrUnsupported.
package holders

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shmkit/shmkit/internal/procfs"
	"github.com/shmkit/shmkit/segment"
)

// Holder is a process that keeps a segment alive, with the ways it holds
// it: "creator" (the process that created it still runs), "maps" (it maps
// the file), "open" (it has the file open), "attached" (SysV), "participant"
// (registered in the segment and alive).
type Holder struct {
	PID   int      `json:"pid"`
	Roles []string `json:"roles"`
}

// Participant is a process registered inside a segment, named by pid and
// start time (clock ticks after boot, as segment.ProcessStart reports it).
type Participant struct {
	PID   int
	Start uint64
}

// Source reads the participants registered in a segment, such as the
// participant table of a channel. It returns nil when the segment holds no
// table of its kind, and an error when the table cannot be read (Judge then
// keeps the segment). seg is attached read-only and valid only during the
// call.
type Source func(seg *segment.Segment) ([]Participant, error)

// Sources combines sources into one that returns all their participants;
// it fails when any of them fails.
func Sources(srcs ...Source) Source {
	return func(seg *segment.Segment) ([]Participant, error) {
		var all []Participant
		for _, src := range srcs {
			if src == nil {
				continue
			}
			ps, err := src(seg)
			if err != nil {
				return nil, err
			}
			all = append(all, ps...)
		}
		return all, nil
	}
}

// Judgement is what Judge concludes about one segment from one Table. The
// JSON names are those shmctl prints.
type Judgement struct {
	// Object is the kernel object judged (zero when Gone): compare it with
	// a later Judgement's to know the name still means the same segment.
	Object  Object   `json:"-"`
	Holders []Holder `json:"holders,omitempty"`
	// Unseen counts SysV attachments by processes this one cannot see
	// (another pid namespace, or hidden /proc).
	Unseen int `json:"unseen_attachments,omitempty"`
	// Unreadable counts the processes whose /proc entries could not be
	// read and that could access the segment: they may hold it. Such a
	// segment is neither InUse nor Dead (unless someone else holds it).
	Unreadable int `json:"unreadable,omitempty"`
	// InUse is true when some process holds the segment (Holders or
	// Unseen).
	InUse bool `json:"-"`
	// Dead is true when nothing holds the segment and its header says it
	// is a shmkit segment that may be removed or taken over.
	Dead bool `json:"-"`
	// Gone is true when the segment no longer exists.
	Gone bool `json:"-"`
	// Reason says in one line why: who holds it, why it is dead, or why it
	// is kept.
	Reason string `json:"reason"`
}

// Judge scans /proc and judges one segment: Scan then Table.Judge, for a
// caller that has one segment to decide about.
func Judge(info segment.Info, participants Source) (Judgement, error) {
	t, err := Scan()
	if err != nil {
		return Judgement{}, err
	}
	return t.Judge(info, participants), nil
}

// Judge decides whether anything still holds the segment info describes
// (info as segment.List or segment.Stat returns it; it may carry a
// validation error in info.Err). A segment is dead when
// its creator is dead (pid plus start time), no process maps it or has it
// open (POSIX, File) or is attached to it (SysV, shm_nattch), and no live
// participant is registered in it. Anything that cannot be established
// keeps it: a newer layout version, a foreign or corrupt header, processes
// whose /proc entries are unreadable.
//
// participants reads the participants registered in the segment (nil: the
// segment has no such table); it is called, on a read-only attachment, only
// when the header validated. When it fails the segment is kept. Judge never
// changes the segment.
func (t *Table) Judge(info segment.Info, participants Source) Judgement {
	var j Judgement
	obj, err := t.locate(info)
	if err != nil {
		j.Gone = errors.Is(err, segment.ErrNotExist)
		j.Reason = err.Error()
		return j
	}
	j.Object = obj
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
		j.Holders = append(j.Holders, Holder{PID: pid, Roles: []string{role}})
	}
	if creator > 0 && procfs.Alive(creator, start) {
		add(creator, "creator")
	}
	mappers := t.mappers(obj)
	for _, pid := range mappers {
		if obj.SysV() {
			add(pid, "attached")
		} else {
			add(pid, "maps")
		}
	}
	for _, pid := range t.openers(obj) {
		add(pid, "open")
	}
	if n := t.attachments(obj); n > len(mappers) {
		j.Unseen = n - len(mappers)
	}
	j.Unreadable = len(t.blindTo(obj))
	if info.Err == nil {
		parts, err := readParticipants(info, participants)
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
	slices.SortFunc(j.Holders, func(a, b Holder) int { return a.PID - b.PID })

	switch {
	case len(j.Holders) > 0 || j.Unseen > 0:
		j.InUse = true
		var parts []string
		if len(j.Holders) > 0 {
			parts = append(parts, Text(j.Holders))
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
	case obj.SysV():
		j.Dead = true
		j.Reason = fmt.Sprintf("creator pid %d dead, no attachments, no live participant", creator)
	default:
		j.Dead = true
		j.Reason = fmt.Sprintf("creator pid %d dead, no process maps it or has it open, no live participant", creator)
	}
	return j
}

// readParticipants asks participants about the segment, which it attaches
// read-only for the purpose.
func readParticipants(info segment.Info, participants Source) ([]Participant, error) {
	if participants == nil {
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
	return participants(seg)
}

// Text renders holders as "pid 12 (creator, maps), pid 40 (maps)".
func Text(hs []Holder) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("pid %d (%s)", h.PID, strings.Join(h.Roles, ", "))
	}
	return strings.Join(parts, ", ")
}
