// Package checksum is the one header checksum of every shmkit structure:
// CRC-32C (Castagnoli), which amd64 and arm64 compute with a dedicated
// instruction.
package checksum

import "hash/crc32"

var table = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC-32C of b.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, table) }

// Update returns the CRC-32C of the bytes already summed into crc followed
// by b, so a checksum can cover non-adjacent ranges: Update(CRC32C(a), b).
func Update(crc uint32, b []byte) uint32 { return crc32.Update(crc, table, b) }
