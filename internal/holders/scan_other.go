//go:build !linux

package holders

import (
	"fmt"
	"runtime"

	"github.com/shmkit/shmkit/segment"
)

// Table stands for the /proc scan of scan_linux.go, which has no
// counterpart off Linux: Scan fails with segment.ErrUnsupported, so gc
// removes nothing and rm needs --force.
type Table struct{}

// Object identifies a segment (see the Linux version); off Linux there is
// none.
type Object struct{}

// SysV reports whether o is a SysV segment.
func (Object) SysV() bool { return false }

// Owner returns the uid that owns o: -1 off Linux.
func (Object) Owner() int { return -1 }

// File returns the device and inode of o's file: zero off Linux.
func (Object) File() (dev, ino uint64) { return 0, 0 }

// Scan fails off Linux: finding who holds a segment needs /proc.
func Scan() (*Table, error) {
	return nil, fmt.Errorf("%w: finding who holds a segment needs Linux /proc (this is %s)", segment.ErrUnsupported, runtime.GOOS)
}

func (t *Table) locate(segment.Info) (Object, error) { return Object{}, segment.ErrUnsupported }
func (t *Table) mappers(Object) []int                { return nil }
func (t *Table) openers(Object) []int                { return nil }
func (t *Table) attachments(Object) int              { return -1 }
func (t *Table) blindTo(Object) []int                { return nil }
func rawCreator(string) (int, uint64)                { return 0, 0 }

// Blind returns the processes whose holdings are unknown: none off Linux.
func (t *Table) Blind() []int { return nil }

// BlindCounted says whether unreadable processes count as holders.
func (t *Table) BlindCounted() bool { return false }

// Capability numbers (linux/capability.h).
const (
	CapIPCLock   = 14
	CapSysPtrace = 19
)

// HasCap reports false off Linux.
func HasCap(uint) bool { return false }

// PIDNamespace fails off Linux.
func PIDNamespace() (ino uint64, initial bool, err error) {
	return 0, false, fmt.Errorf("%w: pid namespaces are Linux's", segment.ErrUnsupported)
}

// PIDNamespaceNote returns "" off Linux.
func PIDNamespaceNote() string { return "" }
