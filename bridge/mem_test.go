package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// memChan is an in-memory pub/sub channel with the semantics the bridge
// relies on (per-publisher sequence, bounded rings, Block or DropNewest),
// standing in for a shmkit channel in tests of the bridge core.
type memChan struct {
	max, depth int
	dropNewest bool

	mu       sync.Mutex
	subs     []*memSub
	pubs     int
	everPub  bool
	nextID   int
	gone     chan struct{} // closed while no publisher is attached (after one was)
	released atomic.Int64
	received atomic.Int64
}

func newMemChan(maxMsg, depth int, dropNewest bool) *memChan {
	return &memChan{max: maxMsg, depth: depth, dropNewest: dropNewest, gone: make(chan struct{})}
}

type memMsg struct {
	ch     *memChan
	data   []byte
	pub    int
	seq    uint64
	missed uint64
	done   bool
}

func (m *memMsg) Bytes() []byte  { return m.data }
func (m *memMsg) Publisher() int { return m.pub }
func (m *memMsg) Seq() uint64    { return m.seq }
func (m *memMsg) Missed() uint64 { return m.missed }
func (m *memMsg) Release() error {
	if m.done {
		return fmt.Errorf("released twice")
	}
	m.done = true
	m.ch.released.Add(1)
	return nil
}

type memSub struct {
	ch      *memChan
	q       chan *memMsg
	missed  atomic.Uint64
	seen    uint64
	batches atomic.Int64 // ReceiveBatch calls
}

func (c *memChan) subscribe() *memSub {
	s := &memSub{ch: c, q: make(chan *memMsg, c.depth)}
	c.mu.Lock()
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	return s
}

func (s *memSub) Receive(ctx context.Context) (Message, error) {
	for {
		s.ch.mu.Lock()
		gone := s.ch.gone
		idle := s.ch.everPub && s.ch.pubs == 0
		s.ch.mu.Unlock()
		select {
		case m := <-s.q:
			return s.got(m), nil
		default:
		}
		if idle {
			return nil, fmt.Errorf("%w: memchan", ErrNoPublishers)
		}
		select {
		case m := <-s.q:
			return s.got(m), nil
		case <-gone:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// got accounts for m, just taken from the queue: the drops since the last
// one, and the channel's count of received messages.
func (s *memSub) got(m *memMsg) *memMsg {
	mm := s.missed.Load()
	m.missed, s.seen = mm-s.seen, mm
	s.ch.received.Add(1)
	return m
}

func (s *memSub) TryReceive() (Message, error) {
	select {
	case m := <-s.q:
		return s.got(m), nil
	default:
		return nil, nil
	}
}

type memPub struct {
	ch      *memChan
	id      int
	mu      sync.Mutex
	seq     uint64
	batches atomic.Int64 // PublishBatch calls
}

func (c *memChan) publisher() *memPub {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	c.pubs++
	c.everPub = true
	c.gone = make(chan struct{})
	return &memPub{ch: c, id: c.nextID}
}

func (p *memPub) close() {
	c := p.ch
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pubs--
	if c.pubs == 0 {
		close(c.gone)
	}
}

func (p *memPub) Publish(ctx context.Context, b []byte) error {
	if len(b) > p.ch.max {
		return fmt.Errorf("%w: %d bytes, MaxMessage %d", ErrTooLarge, len(b), p.ch.max)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.ch.mu.Lock()
	subs := append([]*memSub(nil), p.ch.subs...)
	p.ch.mu.Unlock()
	dropped := false
	for _, s := range subs {
		m := &memMsg{ch: p.ch, data: append([]byte(nil), b...), pub: p.id, seq: p.seq}
		if p.ch.dropNewest {
			select {
			case s.q <- m:
			default:
				s.missed.Add(1)
				dropped = true
			}
			continue
		}
		select {
		case s.q <- m:
		case <-ctx.Done():
			s.missed.Add(1)
			return ctx.Err()
		}
	}
	if dropped {
		return fmt.Errorf("%w: memchan ring full", ErrDropped)
	}
	return nil
}

func (p *memPub) MaxMessage() int          { return p.ch.max }
func (p *memPub) PublisherID() (int, bool) { return p.id, true }

// PublishBatch is Publish for each message in turn (BatchSink): the in
// side's batch path over the in-memory channel. A message the channel
// dropped or refused ends the batch with its index.
func (p *memPub) PublishBatch(ctx context.Context, msgs [][]byte) (int, error) {
	p.batches.Add(1)
	for i, m := range msgs {
		if err := p.Publish(ctx, m); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

// singleSink hides a Sink's PublishBatch: the in side then publishes one
// message at a time.
type singleSink struct{ Sink }

// ReceiveBatch is Receive, then TryReceive while messages are ready, each
// copied out and released (BatchReceiver): the out side's batch path over
// the in-memory channel.
func (s *memSub) ReceiveBatch(ctx context.Context, bufs [][]byte, infos []Info) (int, error) {
	m, err := s.Receive(ctx)
	n := 0
	for err == nil && m != nil && n < len(bufs) {
		mm := m.(*memMsg)
		infos[n] = Info{Len: len(mm.data), Publisher: mm.pub, Seq: mm.seq, Missed: mm.missed}
		copy(bufs[n], mm.data)
		if err := mm.Release(); err != nil {
			return n, err
		}
		if n++; n < len(bufs) {
			m, err = s.TryReceive()
		}
	}
	s.batches.Add(1)
	return n, err
}

func (s *memSub) MaxMessage() int { return s.ch.max }

// trySource hides a memSub's ReceiveBatch: the out side then batches with
// TryReceive.
type trySource struct{ s *memSub }

func (t trySource) Receive(ctx context.Context) (Message, error) { return t.s.Receive(ctx) }
func (t trySource) TryReceive() (Message, error)                 { return t.s.TryReceive() }
