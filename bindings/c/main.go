//go:build cgo

package main

/*
#define SHMKIT_NO_PROTOTYPES
#include "shmkit.h"
void shmkit_set_error(const char *msg, size_t n);
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit"
)

func main() {}

// The objects behind the handles. Each is a thin wrapper of the Go API
// object: the C ABI adds only the handle, and a table that turns loaned and
// received samples into tokens (cheaper than a cgo.Handle per message).

type channel struct{ ch *shmkit.Channel }

type publisher struct {
	p      *shmkit.Publisher
	maxMsg int
	mu     sync.Mutex
	loans  map[uint64]*shmkit.Sample
	next   uint64
}

type subscriber struct {
	s    *shmkit.Subscriber
	mu   sync.Mutex
	held []heldSample // token = gen<<32 | index+1
	free []int
}

type heldSample struct {
	smp *shmkit.Sample
	gen uint32
}

var (
	errInvalidHandle   = errors.New("shmkit: invalid handle (0, closed, or of another kind)")
	errInvalidArgument = errors.New("shmkit: invalid argument")
	errTimeout         = fmt.Errorf("shmkit: timed out: %w", context.DeadlineExceeded)
)

// get returns the object behind handle h if it is a T.
func get[T any](h C.uint64_t) (v T, err error) {
	if h == 0 {
		return v, errInvalidHandle
	}
	defer func() {
		if recover() != nil { // cgo.Handle.Value panics on a deleted handle
			err = errInvalidHandle
		}
	}()
	v, ok := cgo.Handle(h).Value().(T)
	if !ok {
		return v, errInvalidHandle
	}
	return v, nil
}

// fail records err as the calling thread's message and returns its status.
func fail(err error) C.int {
	if err == context.DeadlineExceeded {
		err = errTimeout
	}
	s := err.Error()
	C.shmkit_set_error((*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s)))
	return status(err)
}

func argError(format string, a ...any) C.int {
	return fail(fmt.Errorf("%w: "+format, append([]any{errInvalidArgument}, a...)...))
}

// status maps an error of the Go API to its shmkit_status.
func status(err error) C.int {
	switch {
	case err == nil:
		return C.SHMKIT_OK
	case errors.Is(err, errInvalidHandle):
		return C.SHMKIT_ERR_INVALID_HANDLE
	case errors.Is(err, errInvalidArgument):
		return C.SHMKIT_ERR_INVALID_ARGUMENT
	case errors.Is(err, context.DeadlineExceeded):
		return C.SHMKIT_ERR_TIMEOUT
	case errors.Is(err, shmkit.ErrWouldBlock):
		return C.SHMKIT_ERR_WOULD_BLOCK
	case errors.Is(err, shmkit.ErrPeerGone):
		return C.SHMKIT_ERR_PEER_GONE
	case errors.Is(err, shmkit.ErrClosed):
		return C.SHMKIT_ERR_CLOSED
	case errors.Is(err, shmkit.ErrConfig):
		return C.SHMKIT_ERR_CONFIG
	case errors.Is(err, shmkit.ErrMismatch):
		return C.SHMKIT_ERR_MISMATCH
	case errors.Is(err, shmkit.ErrCorrupt), errors.Is(err, shmkit.ErrBadMagic), errors.Is(err, shmkit.ErrVersion):
		return C.SHMKIT_ERR_CORRUPT
	case errors.Is(err, shmkit.ErrTooLarge):
		return C.SHMKIT_ERR_TOO_LARGE
	case errors.Is(err, shmkit.ErrFull):
		return C.SHMKIT_ERR_FULL
	case errors.Is(err, shmkit.ErrNoMemory):
		return C.SHMKIT_ERR_NO_MEMORY
	case errors.Is(err, shmkit.ErrTooManyHeld):
		return C.SHMKIT_ERR_TOO_MANY_HELD
	case errors.Is(err, shmkit.ErrTypeMismatch):
		return C.SHMKIT_ERR_TYPE_MISMATCH
	case errors.Is(err, shmkit.ErrSampleState):
		return C.SHMKIT_ERR_SAMPLE_STATE
	case errors.Is(err, shmkit.ErrUnsupported):
		return C.SHMKIT_ERR_UNSUPPORTED
	case errors.Is(err, shmkit.ErrInUse):
		return C.SHMKIT_ERR_IN_USE
	case errors.Is(err, shmkit.ErrTooManyLoans):
		return C.SHMKIT_ERR_TOO_MANY_LOANS
	case errors.Is(err, shmkit.ErrUntrusted):
		return C.SHMKIT_ERR_UNTRUSTED
	case errors.Is(err, shmkit.ErrFault):
		return C.SHMKIT_ERR_FAULT
	case errors.Is(err, shmkit.ErrNotExist), errors.Is(err, fs.ErrNotExist):
		return C.SHMKIT_ERR_NOT_FOUND
	case errors.Is(err, shmkit.ErrExist), errors.Is(err, fs.ErrExist):
		return C.SHMKIT_ERR_EXISTS
	}
	return C.SHMKIT_ERR
}

// deadline turns a timeout in nanoseconds into a context: negative is none.
func deadline(ns C.int64_t) (context.Context, context.CancelFunc) {
	if ns < 0 {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), time.Duration(ns))
}

func goConfig(c *C.shmkit_config) shmkit.Config {
	if c == nil {
		return shmkit.Config{}
	}
	clamp := func(v C.uint64_t) int { return int(min(uint64(v), math.MaxInt32+1)) } // too large fails validation
	return shmkit.Config{
		Pattern:          shmkit.Pattern(c.pattern),
		Policy:           shmkit.Policy(c.policy),
		MaxMessage:       clamp(c.max_message),
		RingDepth:        int(c.ring_depth),
		MaxPublishers:    int(c.max_publishers),
		MaxSubscribers:   int(c.max_subscribers),
		MaxProcesses:     int(c.max_processes),
		ChunksPerClass:   int(c.chunks_per_class),
		Keep:             c.keep != 0,
		LivenessInterval: time.Duration(c.liveness_interval_ns),
		MaxLoans:         int(c.max_loans),
		Mode:             os.FileMode(c.mode),
	}
}

func goName(name *C.char) (string, bool) {
	if name == nil {
		return "", false
	}
	return C.GoString(name), true
}

func newChannel(ch *shmkit.Channel, err error, out *C.uint64_t) C.int {
	if err != nil {
		return fail(err)
	}
	*out = C.uint64_t(cgo.NewHandle(&channel{ch: ch}))
	return C.SHMKIT_OK
}

//export shmkit_create
func shmkit_create(name *C.char, cfg *C.shmkit_config, out *C.uint64_t) C.int {
	n, ok := goName(name)
	if !ok || out == nil {
		return argError("shmkit_create: name or out is NULL")
	}
	ch, err := shmkit.Create(n, goConfig(cfg))
	return newChannel(ch, err, out)
}

//export shmkit_open
func shmkit_open(name *C.char, expect *C.shmkit_config, out *C.uint64_t) C.int {
	n, ok := goName(name)
	if !ok || out == nil {
		return argError("shmkit_open: name or out is NULL")
	}
	var opts []shmkit.Option
	if expect != nil {
		opts = append(opts, shmkit.WithExpect(goConfig(expect)))
	}
	ch, err := shmkit.Open(n, opts...)
	return newChannel(ch, err, out)
}

//export shmkit_open_or_create
func shmkit_open_or_create(name *C.char, cfg *C.shmkit_config, out *C.uint64_t) C.int {
	n, ok := goName(name)
	if !ok || out == nil {
		return argError("shmkit_open_or_create: name or out is NULL")
	}
	ch, err := shmkit.OpenOrCreate(n, goConfig(cfg))
	return newChannel(ch, err, out)
}

//export shmkit_channel_close
func shmkit_channel_close(h C.uint64_t) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	cgo.Handle(h).Delete()
	if err := c.ch.Close(); err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_remove
func shmkit_remove(name *C.char, force C.int) C.int {
	n, ok := goName(name)
	if !ok {
		return argError("shmkit_remove: name is NULL")
	}
	var opts []shmkit.Option
	if force != 0 {
		opts = append(opts, shmkit.WithForce())
	}
	if err := shmkit.Remove(n, opts...); err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_channel_config
func shmkit_channel_config(h C.uint64_t, out *C.shmkit_config) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_channel_config: out is NULL")
	}
	cfg := c.ch.Config()
	*out = C.shmkit_config{
		pattern:              C.uint32_t(cfg.Pattern),
		policy:               C.uint32_t(cfg.Policy),
		max_message:          C.uint64_t(cfg.MaxMessage),
		ring_depth:           C.uint32_t(cfg.RingDepth),
		max_publishers:       C.uint32_t(cfg.MaxPublishers),
		max_subscribers:      C.uint32_t(cfg.MaxSubscribers),
		max_processes:        C.uint32_t(cfg.MaxProcesses),
		chunks_per_class:     C.uint32_t(cfg.ChunksPerClass),
		liveness_interval_ns: C.int64_t(cfg.LivenessInterval),
		max_loans:            C.uint32_t(cfg.MaxLoans),
		mode:                 C.uint32_t(cfg.Mode.Perm()),
	}
	if cfg.Keep {
		out.keep = 1
	}
	return C.SHMKIT_OK
}

//export shmkit_channel_stats
func shmkit_channel_stats(h C.uint64_t, out *C.shmkit_stats) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_channel_stats: out is NULL")
	}
	st, err := c.ch.Stats()
	if err != nil && st.Pool.Total == 0 {
		return fail(err)
	}
	*out = C.shmkit_stats{
		pool_total:     C.uint64_t(st.Pool.Total),
		pool_free:      C.uint64_t(st.Pool.Free),
		pool_in_use:    C.uint64_t(st.Pool.InUse),
		pool_in_flight: C.uint64_t(st.Pool.InFlight),
		pool_failed:    C.uint64_t(st.Pool.Failed),
	}
	for _, p := range st.Participants {
		if p.State != "active" {
			continue
		}
		switch p.Role {
		case "publisher", "producer":
			out.publishers++
			out.published += C.uint64_t(p.Messages)
			out.drops += C.uint64_t(p.Drops)
		case "subscriber", "consumer":
			out.subscribers++
			out.received += C.uint64_t(p.Messages)
			out.missed += C.uint64_t(p.Missed)
		case "handle":
			out.handles++
		}
	}
	if err != nil {
		return fail(err) // the figures are filled in; one entry was corrupt
	}
	return C.SHMKIT_OK
}

//export shmkit_channel_stats_json
func shmkit_channel_stats_json(h C.uint64_t, buf *C.char, capacity C.size_t, n *C.size_t) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	if n == nil || (buf == nil && capacity > 0) {
		return argError("shmkit_channel_stats_json: len is NULL, or buf is NULL with a capacity")
	}
	st, err := c.ch.Stats()
	if err != nil && st.Pool.Total == 0 {
		return fail(err)
	}
	b, jerr := json.Marshal(st)
	if jerr != nil {
		return fail(jerr)
	}
	*n = C.size_t(len(b))
	if uint64(len(b)) > uint64(capacity) {
		return fail(fmt.Errorf("shmkit_channel_stats_json: %d bytes needed, buffer of %d", len(b), capacity))
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), len(b)), b)
	if err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_publisher_open
func shmkit_publisher_open(h C.uint64_t, out *C.uint64_t) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_publisher_open: out is NULL")
	}
	var p *shmkit.Publisher
	if c.ch.Config().Pattern == shmkit.WorkQueue {
		var pr *shmkit.Producer
		if pr, err = c.ch.Producer(); err == nil {
			p = pr.Publisher
		}
	} else {
		p, err = c.ch.Publisher()
	}
	if err != nil {
		return fail(err)
	}
	*out = C.uint64_t(cgo.NewHandle(&publisher{p: p, maxMsg: c.ch.Config().MaxMessage, loans: map[uint64]*shmkit.Sample{}}))
	return C.SHMKIT_OK
}

//export shmkit_publisher_close
func shmkit_publisher_close(h C.uint64_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	cgo.Handle(h).Delete()
	if err := p.p.Close(); err != nil { // loans not yet published return to the pool
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_publisher_id
func shmkit_publisher_id(h C.uint64_t, id *C.uint64_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	if id == nil {
		return argError("shmkit_publisher_id: id is NULL")
	}
	*id = C.uint64_t(p.p.ID())
	return C.SHMKIT_OK
}

//export shmkit_loan
func shmkit_loan(h C.uint64_t, n C.size_t, timeout C.int64_t, out *C.shmkit_loan_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_loan: out is NULL")
	}
	if uint64(n) > uint64(p.maxMsg) {
		return fail(fmt.Errorf("%w: %d bytes, max_message is %d", shmkit.ErrTooLarge, uint64(n), p.maxMsg))
	}
	var s *shmkit.Sample
	if timeout == 0 {
		s, err = p.p.Loan(int(n))
	} else {
		ctx, cancel := deadline(timeout)
		s, err = p.p.LoanContext(ctx, int(n))
		cancel()
	}
	if err != nil {
		return fail(err)
	}
	p.mu.Lock()
	p.next++
	tok := p.next
	p.loans[tok] = s
	p.mu.Unlock()
	b := s.Bytes()
	*out = C.shmkit_loan_t{data: unsafe.Pointer(unsafe.SliceData(b)), len: C.size_t(len(b)), token: C.uint64_t(tok)}
	return C.SHMKIT_OK
}

// take removes loan tok from p's table.
func (p *publisher) take(tok C.uint64_t) (*shmkit.Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.loans[uint64(tok)]
	if !ok {
		return nil, fmt.Errorf("%w: no loan %d (published, discarded or never loaned)", shmkit.ErrSampleState, uint64(tok))
	}
	delete(p.loans, uint64(tok))
	return s, nil
}

//export shmkit_publish
func shmkit_publish(h C.uint64_t, tok C.uint64_t, n C.size_t, timeout C.int64_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	s, err := p.take(tok)
	if err != nil {
		return fail(err)
	}
	if uint64(n) > uint64(s.Len()) {
		_ = s.Discard()
		return argError("shmkit_publish: length %d beyond the loan's %d (discarded)", uint64(n), s.Len())
	}
	if int(n) != s.Len() {
		if err := s.SetLen(int(n)); err != nil {
			_ = s.Discard()
			return fail(err)
		}
	}
	ctx, cancel := deadline(timeout)
	err = p.p.Publish(ctx, s)
	cancel()
	if err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_discard
func shmkit_discard(h C.uint64_t, tok C.uint64_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	s, err := p.take(tok)
	if err != nil {
		return fail(err)
	}
	if err := s.Discard(); err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_send
func shmkit_send(h C.uint64_t, data unsafe.Pointer, n C.size_t, timeout C.int64_t) C.int {
	p, err := get[*publisher](h)
	if err != nil {
		return fail(err)
	}
	if data == nil && n > 0 {
		return argError("shmkit_send: data is NULL")
	}
	if uint64(n) > uint64(p.maxMsg) {
		return fail(fmt.Errorf("%w: %d bytes, max_message is %d", shmkit.ErrTooLarge, uint64(n), p.maxMsg))
	}
	msg := unsafe.Slice((*byte)(data), int(n)) // C memory, copied by Send and not retained
	ctx, cancel := deadline(timeout)
	err = p.p.Send(ctx, msg)
	cancel()
	if err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_subscriber_open
func shmkit_subscriber_open(h C.uint64_t, out *C.uint64_t) C.int {
	c, err := get[*channel](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_subscriber_open: out is NULL")
	}
	var s *shmkit.Subscriber
	if c.ch.Config().Pattern == shmkit.WorkQueue {
		var co *shmkit.Consumer
		if co, err = c.ch.Consumer(); err == nil {
			s = co.Subscriber
		}
	} else {
		s, err = c.ch.Subscriber()
	}
	if err != nil {
		return fail(err)
	}
	*out = C.uint64_t(cgo.NewHandle(&subscriber{s: s}))
	return C.SHMKIT_OK
}

//export shmkit_subscriber_close
func shmkit_subscriber_close(h C.uint64_t) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	cgo.Handle(h).Delete()
	if err := s.s.Close(); err != nil { // releases what it holds
		return fail(err)
	}
	return C.SHMKIT_OK
}

// receive returns the next message, waiting up to timeout ns (negative:
// for ever). A message that is there costs one TryReceive: no context.
func (s *subscriber) receive(timeout C.int64_t) (*shmkit.Sample, error) {
	if timeout < 0 {
		return s.s.Receive(context.Background())
	}
	smp, err := s.s.TryReceive()
	if !errors.Is(err, shmkit.ErrWouldBlock) {
		return smp, err
	}
	if timeout == 0 {
		return nil, errTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout))
	defer cancel()
	return s.s.Receive(ctx)
}

//export shmkit_receive
func shmkit_receive(h C.uint64_t, timeout C.int64_t, out *C.shmkit_message) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_receive: out is NULL")
	}
	smp, err := s.receive(timeout)
	if err != nil {
		return fail(err)
	}
	s.hold(smp, out)
	return C.SHMKIT_OK
}

//export shmkit_try_receive
func shmkit_try_receive(h C.uint64_t, out *C.shmkit_message) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_try_receive: out is NULL")
	}
	smp, err := s.s.TryReceive()
	if err != nil {
		return fail(err)
	}
	s.hold(smp, out)
	return C.SHMKIT_OK
}

// hold enters smp in s's table and describes it in out.
func (s *subscriber) hold(smp *shmkit.Sample, out *C.shmkit_message) {
	s.mu.Lock()
	var i int
	if k := len(s.free); k > 0 {
		i, s.free = s.free[k-1], s.free[:k-1]
	} else {
		i = len(s.held)
		s.held = append(s.held, heldSample{})
	}
	s.held[i].smp = smp
	gen := s.held[i].gen
	s.mu.Unlock()
	b := smp.Bytes() // shared memory, not Go memory: C may hold it
	*out = C.shmkit_message{
		data:      unsafe.Pointer(unsafe.SliceData(b)),
		len:       C.size_t(len(b)),
		seq:       C.uint64_t(smp.Seq()),
		missed:    C.uint64_t(smp.Missed()),
		publisher: C.uint64_t(smp.Publisher()),
		token:     C.uint64_t(uint64(gen)<<32 | uint64(i+1)),
	}
}

//export shmkit_release
func shmkit_release(h C.uint64_t, tok C.uint64_t) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	if err := s.release(tok); err != nil {
		return fail(err)
	}
	return C.SHMKIT_OK
}

//export shmkit_receive_next
func shmkit_receive_next(h C.uint64_t, tok C.uint64_t, timeout C.int64_t, out *C.shmkit_message) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		return argError("shmkit_receive_next: out is NULL")
	}
	if tok != 0 {
		if err := s.release(tok); err != nil {
			return fail(err)
		}
	}
	smp, err := s.receive(timeout)
	if err != nil {
		return fail(err)
	}
	s.hold(smp, out)
	return C.SHMKIT_OK
}

// release releases the message of token tok.
func (s *subscriber) release(tok C.uint64_t) error {
	i, gen := int(uint32(tok))-1, uint32(tok>>32)
	s.mu.Lock()
	if i < 0 || i >= len(s.held) || s.held[i].smp == nil || s.held[i].gen != gen {
		s.mu.Unlock()
		return fmt.Errorf("%w: no message %#x (released, or never received here)", shmkit.ErrSampleState, uint64(tok))
	}
	smp := s.held[i].smp
	s.held[i] = heldSample{gen: gen + 1}
	s.free = append(s.free, i)
	s.mu.Unlock()
	return smp.Release()
}

//export shmkit_receive_into
func shmkit_receive_into(h C.uint64_t, buf unsafe.Pointer, capacity C.size_t, n *C.size_t, timeout C.int64_t) C.int {
	s, err := get[*subscriber](h)
	if err != nil {
		return fail(err)
	}
	if n == nil || (buf == nil && capacity > 0) {
		return argError("shmkit_receive_into: len is NULL, or buf is NULL with a capacity")
	}
	dst := unsafe.Slice((*byte)(buf), int(min(uint64(capacity), math.MaxInt32)))
	var got int
	if timeout < 0 {
		got, err = s.s.ReceiveInto(context.Background(), dst)
	} else {
		var smp *shmkit.Sample
		if smp, err = s.receive(timeout); err == nil {
			got = smp.Len()
			copy(dst, smp.Bytes())
			err = smp.Release()
		}
	}
	if err != nil {
		return fail(err)
	}
	*n = C.size_t(got)
	return C.SHMKIT_OK
}
