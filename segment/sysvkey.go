package segment

import "hash/fnv"

// SysVKey returns the SysV IPC key of the segment name: the 32-bit FNV-1a
// hash of "shmkit." + name, read as a signed int32; a hash of 0
// (IPC_PRIVATE) becomes 1. Options.SysVKey overrides it.
func SysVKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte("shmkit." + name))
	k := int32(h.Sum32())
	if k == 0 {
		k = 1
	}
	return k
}
