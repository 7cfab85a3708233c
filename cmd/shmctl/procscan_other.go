//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/shmkit/shmkit/segment"
)

// procTable stands for the /proc scan of procscan_linux.go, which has no
// counterpart off Linux: scanProcs fails, so gc removes nothing and rm
// needs --force.
type procTable struct{}

type object struct{}

func (object) sysv() bool { return false }

func scanProcs() (*procTable, error) {
	return nil, fmt.Errorf("%w: finding who holds a segment needs Linux /proc (this is %s)", segment.ErrUnsupported, runtime.GOOS)
}

func (t *procTable) locate(segment.Info) (object, error) { return object{}, segment.ErrUnsupported }
func (t *procTable) mappers(object) []int                { return nil }
func (t *procTable) openers(object) []int                { return nil }
func (t *procTable) attachments(object) int              { return -1 }
func (t *procTable) blindTo(object) []int                { return nil }
func rawCreator(string) (int, uint64)                    { return 0, 0 }
func (t *procTable) blindPIDs() []int                    { return nil }
func (t *procTable) blindCounted() bool                  { return false }
func pidNamespaceNote() string                           { return "" }
