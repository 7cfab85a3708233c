package shmkit

import (
	"fmt"
	"unsafe"

	"github.com/shmkit/shmkit/allocator"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/segment"
)

// alignedCopy returns n zero bytes at an 8-byte aligned address.
func alignedCopy(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), n)
}

// maxInspectPool is the largest pool Inspect copies to count its chunks.
const maxInspectPool = 256 << 20

// Inspect reads a named channel's configuration and counters from outside:
// it attaches the segment read-only, copies the header and the participant
// table (and the pool, up to 256 MiB, for its counters), decodes the
// copies and detaches. It takes no participant slot and writes nothing, so
// it disturbs nobody (shmctl uses it). Everything read is validated as Open
// validates it; an impossible participant entry is ErrCorrupt (with the
// rest of the figures). It reads anyone's channel the caller may read,
// without the owner checks of Open, and every read of the mapping is
// fault-safe: a segment truncated under it (by a hostile writer) is an
// error wrapping ErrFault, never a crash (docs/security.md).
func Inspect(name string, opts ...Option) (Config, Stats, error) {
	o := buildOptions(opts)
	seg, err := segment.Open(o.backend, name, &segment.Options{ReadOnly: true})
	if err != nil {
		return Config{}, Stats{}, fmt.Errorf("inspect channel %q: %w", name, err)
	}
	defer seg.Close()
	read := func(region string, max int) ([]byte, error) {
		r, err := seg.Region(region)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMagic, err)
		}
		if r.Length > int64(max) {
			return nil, fmt.Errorf("%w: region %q of %d bytes, at most %d expected", ErrCorrupt, region, r.Length, max)
		}
		words := make([]uint64, (r.Length+7)/8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(words)*8)[:r.Length]
		if _, err := seg.ReadAt(b, r.Offset); err != nil {
			return nil, err
		}
		return b, nil
	}
	hdr, err := read(regionHeader, 64<<10)
	if err != nil {
		return Config{}, Stats{}, err
	}
	h, err := decodeHeader(hdr)
	if err != nil {
		return Config{}, Stats{}, err
	}
	cfg := h.cfg
	cfg.Backend = o.backend
	parts, err := read(regionParts, cfg.participants()*entrySize)
	if err != nil {
		return cfg, Stats{}, err
	}
	var st Stats
	if h.poolSize <= maxInspectPool {
		if pmem, err := read(regionPool, int(h.poolSize)); err == nil {
			if cs, err := allocator.ReadStats(pmem); err == nil {
				st.Pool = sumClasses(cs)
				st.Classes = cs
			}
		}
	}
	var firstErr error
	if rmem, err := read(regionRings, ringsRegionSize(cfg)); err != nil {
		firstErr = err
	} else if cfg.Pattern == PubSub {
		st.Rings, firstErr = inspectLogs(rmem, cfg)
	} else if r, err := ring.AttachMPMC(rmem); err != nil {
		firstErr = fmt.Errorf("%w: work queue ring: %w", ErrCorrupt, err)
	} else {
		// Len clamps an impossible distance between the indices to 0.
		st.Rings = append(st.Rings, RingStats{Ring: 0, Depth: cfg.RingDepth, Len: r.Len(), Closed: r.Closed()})
	}
	for i := range cfg.participants() {
		e, err := decodeEntry(parts, i, cfg)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("participant %d: %w", i, err)
			}
			continue
		}
		if e.State != psFree {
			st.Participants = append(st.Participants, participantStats(e, cfg))
		}
	}
	// The tap region: absent in a channel of a shmkit from before taps.
	if r, err := seg.Region(regionTap); err == nil {
		tmem := alignedCopy(tpRing)
		var g tapGeom
		if r.Length < tpRing {
			err = fmt.Errorf("%w: tap region of %d bytes", ErrCorrupt, r.Length)
		} else if _, rerr := seg.ReadAt(tmem, r.Offset); rerr != nil {
			err = rerr
		} else {
			g, err = decodeTapRegion(tmem, int(r.Length))
		}
		if err == nil {
			cfg.TapSlots, cfg.TapSnap = g.slots, g.snap
			if g.slots == 0 {
				cfg.TapSlots = -1
			}
			st.Taps, err = readTaps(tmem)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return cfg, st, firstErr
}
