//go:build !unix

package segment

import "os"

// fileOwner returns the mode of an open file; off Unix there is no owner
// to check (every uid is 0), so only the mode bits take part.
func fileOwner(f *os.File) (owner, error) {
	fi, err := f.Stat()
	if err != nil {
		return owner{}, err
	}
	return owner{mode: fi.Mode().Perm()}, nil
}

// pathID has no file identity to give off Unix: RemoveName then removes
// by name alone.
func pathID(string) (dev, ino uint64, err error) { return 0, 0, nil }

// openNoFollow: no such flags off Unix.
const openNoFollow = 0
