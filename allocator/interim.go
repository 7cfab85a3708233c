package allocator

import (
	"hash/crc32"
	"sync/atomic"
)

// Interim stand-ins for internal/checksum and internal/atomicx until they
// land on main.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func storeRelease32(p *atomic.Uint32, v uint32) { p.Store(v) }
func storeRelease64(p *atomic.Uint64, v uint64) { p.Store(v) }
