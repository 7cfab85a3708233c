package shmkit

// Peer is the identity of a process that connects to a private channel, as
// the kernel reports it (SO_PEERCRED): it cannot be forged by the peer.
type Peer struct {
	PID, UID, GID int
}

// Access says who may join a private channel. A peer is admitted when its
// uid is in UIDs, or its gid is in GIDs, or Allow returns true. The zero
// Access admits only the owner's own uid.
type Access struct {
	UIDs  []int
	GIDs  []int
	Allow func(Peer) bool
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
		if g == p.GID {
			return true
		}
	}
	return a.Allow != nil && a.Allow(p)
}
