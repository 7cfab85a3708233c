package shmkit

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// RelayStats are the far side's figures of a participant that relays a
// channel to or from another transport (a bridge to NATS, say): it is an
// ordinary publisher (messages come in from the far side) or subscriber
// (messages go out to it), and these counters say how the far side is
// doing. They are kept in the participant's entry, next to the channel's
// own counters, so Stats, Inspect and shmctl show them without asking the
// relay.
type RelayStats struct {
	// Kind names the relay, 1 to 8 bytes of [a-z0-9._-] (e.g. "nats-out",
	// "nats-in"); "" when the participant is no relay.
	Kind string
	// Messages and Bytes: messages and payload bytes handed to the far
	// side (a relaying subscriber) or taken from it (a relaying publisher).
	Messages, Bytes uint64
	// Drops: messages lost on the far side of the relay (not handed over,
	// or dropped on the way in), as the relay counts them.
	Drops uint64
	// Reconnects to the far side.
	Reconnects uint64
	// Lag: messages in flight that the far side has not confirmed yet, or
	// that wait there for the relay (a gauge, not a counter).
	Lag uint64
}

// maxRelayKind is the size of the relay_kind field.
const maxRelayKind = 8

// Relay is a participant's relay block: the figures of the far side that
// the participant relays to or from (see RelayStats). Only the
// participant's owner writes it, with plain release stores (no locked
// instruction); other processes read it through Stats and Inspect. A
// Relay is valid as long as its Publisher or Subscriber: after the
// participant's Close (or the Channel's), SetKind and Store return
// ErrClosed. Methods are safe for concurrent use.
type Relay struct {
	ch   *Channel
	e    []byte
	slot int
	mu   sync.Mutex
	kind bool // a kind was set
	gone bool // the participant left: the entry is no longer ours
}

func (r *Relay) init(ch *Channel, e []byte, slot int) { r.ch, r.e, r.slot = ch, e, slot }

// Relay returns the publisher's relay block (a publisher that relays
// messages in from another transport writes its far-side figures there).
func (p *Publisher) Relay() *Relay { return &p.relay }

// Relay returns the subscriber's relay block (a subscriber that relays
// messages out to another transport writes its far-side figures there).
func (s *Subscriber) Relay() *Relay { return &s.relay }

// SetKind marks the participant as a relay of the given kind: 1 to 8 bytes
// of [a-z0-9._-] (ErrConfig otherwise). Until it is called the participant
// is no relay and its relay figures read as zero. A new participant in the
// same slot starts without a kind.
func (r *Relay) SetKind(kind string) error {
	k, err := encodeRelayKind(kind)
	if err != nil {
		return err
	}
	return r.write(false, func() {
		atomicx.StoreRelease64(u64(r.e, peRelayKind), k)
		r.kind = true
	})
}

// Store writes the relay's figures (st.Kind is not written: SetKind sets
// it, and must have been called first, else ErrConfig). Each field is one
// release store; a reader may see some fields of this Store and some of
// the previous one.
func (r *Relay) Store(st RelayStats) error {
	return r.write(true, func() {
		atomicx.StoreRelease64(u64(r.e, peRelayMsgs), st.Messages)
		atomicx.StoreRelease64(u64(r.e, peRelayBytes), st.Bytes)
		atomicx.StoreRelease64(u64(r.e, peRelayDrops), st.Drops)
		atomicx.StoreRelease64(u64(r.e, peRelayReconnects), st.Reconnects)
		atomicx.StoreRelease64(u64(r.e, peRelayLag), st.Lag)
	})
}

// write runs f on the entry while the participant holds it and the channel
// stays mapped (needKind: only once SetKind was called).
func (r *Relay) write(needKind bool, f func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return ErrClosed
	}
	if needKind && !r.kind {
		return fmt.Errorf("%w: relay figures stored before SetKind", ErrConfig)
	}
	if err := r.ch.enterAt(r.slot); err != nil {
		return err
	}
	defer r.ch.exitAt(r.slot)
	f()
	return nil
}

// retire stops every later write: the participant is leaving and its
// entry goes back to the channel.
func (r *Relay) retire() {
	r.mu.Lock()
	r.gone = true
	r.mu.Unlock()
}

func relayKindByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// encodeRelayKind packs kind into the relay_kind word: its bytes in
// memory order (little endian), zero padded.
func encodeRelayKind(kind string) (uint64, error) {
	if len(kind) < 1 || len(kind) > maxRelayKind {
		return 0, fmt.Errorf("%w: relay kind %q: want 1 to %d bytes", ErrConfig, kind, maxRelayKind)
	}
	var b [maxRelayKind]byte
	for i := range len(kind) {
		if !relayKindByte(kind[i]) {
			return 0, fmt.Errorf("%w: relay kind %q: byte %d is not one of [a-z0-9._-]", ErrConfig, kind, i)
		}
		b[i] = kind[i]
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// decodeRelayKind is the inverse of encodeRelayKind for a non-zero word:
// ok is false unless it holds 1 to 8 valid bytes followed only by zeros.
func decodeRelayKind(w uint64) (string, bool) {
	var b [maxRelayKind]byte
	binary.LittleEndian.PutUint64(b[:], w)
	n := 0
	for n < maxRelayKind && b[n] != 0 {
		if !relayKindByte(b[n]) {
			return "", false
		}
		n++
	}
	if n == 0 {
		return "", false
	}
	for _, c := range b[n:] {
		if c != 0 {
			return "", false
		}
	}
	return string(b[:n]), true
}
