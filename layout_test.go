package shmkit

import (
	"testing"

	"github.com/shmkit/shmkit/internal/layoutdoc"
)

const doc = "docs/channels.md"

type F = layoutdoc.Field

func TestLayoutDoc(t *testing.T) {
	layoutdoc.Check(t, doc, "channel_header", []F{
		{Name: "magic", Offset: hdrMagic, Size: 4},
		{Name: "version", Offset: hdrVersion, Size: 4},
		{Name: "pattern", Offset: hdrPattern, Size: 4},
		{Name: "policy", Offset: hdrPolicy, Size: 4},
		{Name: "max_message", Offset: hdrMaxMessage, Size: 4},
		{Name: "ring_depth", Offset: hdrRingDepth, Size: 4},
		{Name: "max_publishers", Offset: hdrMaxPubs, Size: 4},
		{Name: "max_subscribers", Offset: hdrMaxSubs, Size: 4},
		{Name: "max_processes", Offset: hdrMaxProcs, Size: 4},
		{Name: "chunks_per_class", Offset: hdrChunks, Size: 4},
		{Name: "pool_size", Offset: hdrPoolSize, Size: 8},
		{Name: "liveness_ns", Offset: hdrLiveness, Size: 8},
		{Name: "entry_size", Offset: hdrEntrySize, Size: 4},
		{Name: "ring_size", Offset: hdrRingSize, Size: 4},
		{Name: "flags", Offset: hdrFlags, Size: 4},
		{Name: "max_loans", Offset: hdrMaxLoans, Size: 4},
		{Name: "max_held", Offset: hdrMaxHeld, Size: 4},
		{Name: "crc", Offset: hdrCRC, Size: 4},
		{Name: "removing", Offset: hdrRemoving, Size: 4},
		{Name: "type_fingerprint", Offset: hdrTypeFP, Size: 8},
		{Name: "publisher_joins", Offset: hdrPubJoins, Size: 8},
		{Name: "freed.seq", Offset: hdrFreed, Size: 4},
		{Name: "freed.sleepers", Offset: hdrFreed + 4, Size: 4},
		{Name: "frees", Offset: hdrFrees, Size: 4},
		{Name: "loan_waiters", Offset: hdrLoanWaiters, Size: 4},
		{Name: "joined.seq", Offset: hdrJoinedEv, Size: 4},
		{Name: "joined.sleepers", Offset: hdrJoinedEv + 4, Size: 4},
	})
	layoutdoc.Check(t, doc, "type_name", []F{
		{Name: "fingerprint", Offset: tnFP, Size: 8},
		{Name: "name", Offset: tnName, Size: typeNameSize - tnName},
	})
	layoutdoc.Check(t, doc, "participant", []F{
		{Name: "state", Offset: peState, Size: 8},
		{Name: "pid", Offset: pePID, Size: 4},
		{Name: "start", Offset: peStart, Size: 8},
		{Name: "joined", Offset: peJoined, Size: 8},
		{Name: "messages", Offset: peMsgs, Size: 8},
		{Name: "bytes", Offset: peBytes, Size: 8},
		{Name: "drops", Offset: peDrops, Size: 8},
		{Name: "blocked_ns", Offset: peBlocked, Size: 8},
		{Name: "last_active", Offset: peActive, Size: 8},
		{Name: "loans", Offset: peLoans, Size: 8},
		{Name: "missed", Offset: peMissed, Size: 8},
		{Name: "publishing", Offset: pePubRef, Size: 8},
		{Name: "relay_kind", Offset: peRelayKind, Size: 8},
		{Name: "relay_messages", Offset: peRelayMsgs, Size: 8},
		{Name: "relay_bytes", Offset: peRelayBytes, Size: 8},
		{Name: "relay_drops", Offset: peRelayDrops, Size: 8},
		{Name: "relay_reconnects", Offset: peRelayReconnects, Size: 8},
		{Name: "relay_lag", Offset: peRelayLag, Size: 8},
		{Name: "held", Offset: peHeld, Size: 8 * heldSlots},
	})
	layoutdoc.Check(t, doc, "queue_message", []F{
		{Name: "seq", Offset: wqSeq, Size: 8},
		{Name: "publisher", Offset: wqPublisher, Size: 4},
		{Name: "zero", Offset: wqZero, Size: 4},
		{Name: "message", Offset: wqHeader, Size: -1},
	})
	layoutdoc.Check(t, doc, "tap", []F{
		{Name: "slots", Offset: tpSlots, Size: 4},
		{Name: "snap", Offset: tpSnap, Size: 4},
		{Name: "slot_size", Offset: tpSlotSize, Size: 4},
		{Name: "max_taps", Offset: tpMaxTaps, Size: 4},
		{Name: "active", Offset: tpActive, Size: 8},
		{Name: "taps", Offset: tpEntries, Size: MaxTaps * teSize},
		{Name: "tail", Offset: tpTail, Size: 8},
		{Name: "ring", Offset: tpRing, Size: -1},
	})
	layoutdoc.Check(t, doc, "tap_entry", []F{
		{Name: "state", Offset: teState, Size: 8},
		{Name: "start", Offset: teStart, Size: 8},
		{Name: "received", Offset: teReceived, Size: 8},
		{Name: "missed", Offset: teMissed, Size: 8},
	})
	layoutdoc.Check(t, doc, "tap_slot", []F{
		{Name: "seq", Offset: tsSeq, Size: 8},
		{Name: "len_publisher", Offset: tsLenPub, Size: 8},
		{Name: "pub_seq", Offset: tsPubSeq, Size: 8},
		{Name: "data", Offset: tsData, Size: -1},
	})
	if tpEntries+MaxTaps*teSize != tpTail || tapSlotSize(DefaultTapSnap) != 320 {
		t.Errorf("docs/channels.md: tap entries end at the tail (%d, %d), a default slot is 320 bytes (%d)",
			tpEntries+MaxTaps*teSize, tpTail, tapSlotSize(DefaultTapSnap))
	}
	if entrySize != 512 || hdrSize != 192 {
		t.Errorf("docs/channels.md states entry 512, header 192 bytes; code has %d, %d", entrySize, hdrSize)
	}
}
