package segment

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"unsafe"
)

// writable reports whether the mapping that holds mem has write permission,
// from /proc/self/maps.
func writable(mem []byte) bool {
	addr := uintptr(unsafe.Pointer(&mem[0]))
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		var perms string
		if n, _ := fmt.Sscanf(sc.Text(), "%x-%x %s", &lo, &hi, &perms); n == 3 && lo <= addr && addr < hi {
			return strings.Contains(perms, "w")
		}
	}
	return true
}
