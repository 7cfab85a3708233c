//go:build !linux

package memfd

import (
	"fmt"
	"os"
)

// Create returns ErrUnsupported off Linux.
func Create(name string, size int64) (*os.File, error) {
	return nil, fmt.Errorf("%w: create %q", ErrUnsupported, name)
}

// CreateHuge returns ErrUnsupported off Linux.
func CreateHuge(name string, size int64) (*os.File, error) {
	return nil, fmt.Errorf("%w: create %q", ErrUnsupported, name)
}

// Seal returns ErrUnsupported off Linux.
func Seal(f *os.File) error { return ErrUnsupported }

// Sealed returns ErrUnsupported off Linux.
func Sealed(f *os.File) (bool, error) { return false, ErrUnsupported }

// Size returns the size of the file behind f.
func Size(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Map returns ErrUnsupported off Linux.
func Map(f *os.File, size int, writable bool) ([]byte, error) { return nil, ErrUnsupported }

// Unmap returns ErrUnsupported off Linux.
func Unmap(mem []byte) error { return ErrUnsupported }
