//go:build !linux

package main

import (
	"path/filepath"

	"github.com/shmkit/shmkit/internal/holders"
	"github.com/shmkit/shmkit/segment"
)

// gcDir off Linux lists and removes by path: gc removes nothing there
// anyway (holders.Scan needs /proc).
type gcDir struct {
	arg  string
	path string
}

func openGCDir(dir string) (*gcDir, []string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	return &gcDir{arg: dir, path: abs}, nil, nil
}

func (d *gcDir) listPath() string { return d.path }
func (d *gcDir) close()           {}

func (d *gcDir) remove(name string, _ holders.Object) error {
	return segment.Remove(segment.File, filepath.Join(d.path, name), nil)
}
