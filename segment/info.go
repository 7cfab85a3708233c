package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Info describes a segment, as Stat, List and (*Segment).Info report it.
type Info struct {
	Name    string  `json:"name"`
	Backend Backend `json:"backend"`
	// Path is the file of a POSIX or File segment.
	Path string `json:"path,omitempty"`
	// SysVKey and SysVID identify a SysV segment.
	SysVKey int32 `json:"sysv_key,omitempty"`
	SysVID  int   `json:"sysv_id,omitempty"`
	// Size is the total size in bytes, header included.
	Size       int64  `json:"size"`
	HeaderSize int64  `json:"header_size"`
	Version    uint32 `json:"version"`
	// Mode is the permission bits (0 when unknown, e.g. memfd).
	Mode os.FileMode `json:"mode"`
	// CreatorPID and CreatorStart (clock ticks after boot, field 22 of
	// /proc/PID/stat) identify the creating process; CreatorAlive says
	// whether a process with both still runs, so a reused pid is not alive.
	CreatorPID   int       `json:"creator_pid"`
	CreatorStart uint64    `json:"creator_start"`
	CreatorAlive bool      `json:"creator_alive"`
	Created      time.Time `json:"created"`
	// Attached is the number of attachments (SysV only, counting the one
	// Stat or List makes to read the header; -1 when unknown).
	Attached    int      `json:"attached"`
	TOCCapacity int      `json:"toc_capacity"`
	Regions     []Region `json:"regions"`
	// Err is set by List for a segment it found but could not validate
	// (the other fields then hold what is known).
	Err error `json:"-"`
}

// MarshalText renders the backend's name, so JSON shows "posix".
func (b Backend) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses a backend name.
func (b *Backend) UnmarshalText(t []byte) error {
	v, err := ParseBackend(string(t))
	*b = v
	return err
}

// Info describes s: its header, the creator's liveness now, and the table
// of contents (Err is set if the TOC does not validate).
func (s *Segment) Info() Info {
	info := Info{
		Name: s.hdr.name, Backend: s.hdr.backend, Path: s.path, SysVKey: s.hdr.sysvKey,
		Size: s.hdr.totalSize, HeaderSize: s.hdr.headerSize, Version: s.hdr.version,
		CreatorPID: s.hdr.creatorPID, CreatorStart: s.hdr.creatorStart,
		CreatorAlive: ProcessAlive(s.hdr.creatorPID, s.hdr.creatorStart),
		Created:      s.hdr.created, Attached: -1, TOCCapacity: s.hdr.tocCap,
	}
	if s.hdr.backend == SysV {
		info.SysVID = s.id
	}
	s.mu.Lock()
	if d, ok := s.m.(describer); ok && s.mem != nil {
		d.describe(&info)
	}
	s.mu.Unlock()
	info.Regions, info.Err = s.Regions()
	return info
}

// describer is implemented by mappings that know more (mode, attachments).
type describer interface{ describe(*Info) }

// osErr wraps an operating-system error with the matching sentinel.
func osErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w (%w)", ErrExist, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (%w)", ErrNotExist, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (%w)", ErrPermission, err)
	}
	return err
}
