package segment

import (
	"fmt"
	"os"
)

// Options tune Create, Open, Stat and Remove. The zero value (or a nil
// *Options) gives the defaults; each field says which calls read it.
type Options struct {
	// Mode is the permission bits of a new POSIX, SysV or File segment
	// (Create). Zero means 0600. It is applied with fchmod after creation
	// (IPC_CREAT flags for SysV), so the umask does not change it.
	Mode os.FileMode
	// Group, when not "", is the group (a name or a decimal gid) given to a
	// new POSIX, SysV or File segment (Create: fchown, IPC_SET for SysV); the
	// caller must belong to it unless it is root.
	Group string
	// Owners lists the uids, besides the caller's effective uid, whose
	// segments a read-write Open accepts (see ErrUntrusted).
	Owners []int
	// Groups lists the gids whose write permission on a segment a
	// read-write Open tolerates: a segment writable by any other group, or
	// by others (o+w), is refused with ErrUntrusted. Read-only opens (Stat,
	// List, tools) check neither owner nor mode: they read anyone's segment
	// the kernel lets them read and treat it as hostile (ErrFault).
	Groups []int
	// TOCCapacity is the number of table-of-contents entries a new segment
	// reserves (Create); zero means DefaultTOCCapacity.
	TOCCapacity int
	// SysVKey is the SysV IPC key to use instead of SysVKey(name) (all calls
	// on the SysV backend). It must not be 0 (IPC_PRIVATE).
	SysVKey int32
	// ReadOnly maps the segment without write permission (Open, OpenMemfd).
	// Accessors that would hand out writable memory return ErrReadOnly.
	ReadOnly bool
	// Prefault populates the page tables at Create/Open
	// (madvise MADV_POPULATE_*, or touching each page on older kernels), so
	// the first accesses do not fault.
	Prefault bool
	// Lock mlocks the mapping so it is never swapped (Create/Open). Needs
	// RLIMIT_MEMLOCK or CAP_IPC_LOCK.
	Lock bool
	// HugePages asks for huge pages (Create): MFD_HUGETLB for Memfd,
	// SHM_HUGETLB for SysV, a hugetlbfs path for File. POSIX segments live on
	// /dev/shm (tmpfs) and cannot have them. Where no huge pages are
	// reserved, Create fails with ErrHugePages. Sizes are rounded up to the
	// huge page size for Memfd.
	HugePages bool
}

func (o *Options) orDefault() *Options {
	if o == nil {
		return &Options{}
	}
	return o
}

func (o *Options) mode() (os.FileMode, error) {
	if o.Mode == 0 {
		return 0o600, nil
	}
	if o.Mode&^os.ModePerm != 0 {
		return 0, fmt.Errorf("%w: mode %v has bits other than permissions", ErrInvalidOption, o.Mode)
	}
	return o.Mode, nil
}

func (o *Options) tocCap() (int, error) {
	switch {
	case o.TOCCapacity == 0:
		return DefaultTOCCapacity, nil
	case o.TOCCapacity < 0 || o.TOCCapacity > MaxTOCCapacity:
		return 0, fmt.Errorf("%w: TOC capacity %d outside [1, %d]", ErrInvalidOption, o.TOCCapacity, MaxTOCCapacity)
	}
	return o.TOCCapacity, nil
}
