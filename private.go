package shmkit

import "slices"

// Peer is the identity of a process that connects to a private channel, as
// the kernel reports it (SO_PEERCRED, SO_PEERGROUPS): it cannot be forged
// by the peer.
type Peer struct {
	PID, UID, GID int
	// Groups are the peer's supplementary groups (SO_PEERGROUPS; empty
	// where the kernel does not report them).
	Groups []int
}

// Access says who may join a private channel. A peer is admitted when its
// uid is in UIDs, or its primary gid or one of its supplementary groups is
// in GIDs, or Allow returns true. The zero Access admits only the owner's
// own uid. A path socket is given the mode that lets the kernel refuse
// the others already at connect (socketMode).
type Access struct {
	UIDs  []int
	GIDs  []int
	Allow func(Peer) bool
}

// socketMode is the mode (and group, -1 for none) of a path socket that
// serves a, so the kernel's check agrees with a's: 0600 when only the
// owner's uid is admitted, 0660 with the group when a names one group and
// no other uid, and 0666 otherwise (the check at accept decides alone).
func (a Access) socketMode(ownUID int) (mode uint32, gid int) {
	otherUIDs := false
	for _, u := range a.UIDs {
		if u != ownUID {
			otherUIDs = true
		}
	}
	switch {
	case a.Allow != nil || otherUIDs || len(a.GIDs) > 1:
		return 0o666, -1
	case len(a.GIDs) == 1:
		return 0o660, a.GIDs[0]
	}
	return 0o600, -1
}

func (a Access) admits(p Peer, ownUID int) bool {
	if len(a.UIDs) == 0 && len(a.GIDs) == 0 && a.Allow == nil {
		return p.UID == ownUID
	}
	for _, u := range a.UIDs {
		if u == p.UID {
			return true
		}
	}
	for _, g := range a.GIDs {
		if g == p.GID || slices.Contains(p.Groups, g) {
			return true
		}
	}
	return a.Allow != nil && a.Allow(p)
}
