package segment

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkHugetlbfs succeeds if dir is on hugetlbfs, where a plain mapping of a
// file gets huge pages.
func checkHugetlbfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("%w: statfs %s: %w", ErrHugePages, dir, err)
	}
	if uint32(st.Type) != unix.HUGETLBFS_MAGIC {
		return fmt.Errorf("%w: %s is not on hugetlbfs; put the file on a hugetlbfs mount or use the memfd or sysv backend", ErrHugePages, dir)
	}
	return nil
}
