//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/futex"
	"github.com/shmkit/shmkit/ring"
)

// link is the parent's side of a cell's transport. up carries messages
// from the child to the parent; down (ping-pong only) from the parent to
// the child.
type link struct {
	up, down endpoint
	// files become the child's descriptors 3, 4, ...; the parent closes
	// its copies once the child has started.
	files []*os.File
	// abort makes the parent's blocked calls return; it may run
	// concurrently with them.
	abort func()
	// release frees everything the link holds, after the child is gone.
	release func() error
}

// cellSpec is what one cell runs; the child receives it as JSON in
// EnvChild.
type cellSpec struct {
	Kind     string        `json:"kind"`
	Wait     string        `json:"wait,omitempty"`
	Workload string        `json:"workload"`
	Size     int           `json:"size"`
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
	MinMsgs  int           `json:"min_msgs"`
	CPU      int           `json:"cpu"` // child's CPU, -1 for none
	Timeout  time.Duration `json:"timeout"`
	Paths    []string      `json:"paths,omitempty"`   // FIFO paths: up, down
	IDs      []int         `json:"ids,omitempty"`     // SysV queue ids: up, down
	Offsets  []int         `json:"offsets,omitempty"` // ring offsets in the memfd: up, down
	// CrashAfter, when positive, makes the child exit abruptly (status
	// 9, no report) before its CrashAfter+1st send: tests use it to check
	// that the parent reports a dead peer instead of hanging.
	CrashAfter int `json:"crash_after,omitempty"`
}

// crashingEndpoint exits the process before its limit+1st send.
type crashingEndpoint struct {
	endpoint
	left int
}

func (c *crashingEndpoint) send(msg []byte) error {
	if c.left == 0 {
		os.Exit(9)
	}
	c.left--
	return c.endpoint.send(msg)
}

func (s cellSpec) pingpong() bool { return s.Workload == PingPong }

// unavailable builds an n/a error naming the limit.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// openLink sets up the parent's side of spec's transport and fills in the
// fields of spec the child needs.
func openLink(spec *cellSpec) (*link, error) {
	switch spec.Kind {
	case "pipe":
		return pipeLink(spec)
	case "fifo":
		return fifoLink(spec)
	case "unix":
		return socketpairLink(spec, unix.SOCK_STREAM)
	case "seqpacket":
		return socketpairLink(spec, unix.SOCK_SEQPACKET)
	case "tcp":
		return tcpLink(spec)
	case "posixmq":
		return mqLink(spec)
	case "sysvmsg":
		return sysvLink(spec)
	case "spsc", "bytering", "mpmc":
		return ringLink(spec)
	}
	return nil, fmt.Errorf("transport %q has no cross-process link: %w", spec.Kind, ErrConfig)
}

// attachLink is the child's side: up is the child's sending end, down its
// receiving end (nil for stream).
func attachLink(spec cellSpec) (up, down endpoint, err error) {
	switch spec.Kind {
	case "pipe":
		return fdStream{3}, fdStream{4}, nil
	case "unix", "tcp":
		return fdStream{3}, fdStream{3}, nil
	case "seqpacket":
		return fdPacket{3}, fdPacket{3}, nil
	case "fifo":
		return attachFIFO(spec)
	case "posixmq":
		return newMQEndpoint(3, spec.Timeout), newMQEndpoint(4, spec.Timeout), nil
	case "sysvmsg":
		if len(spec.IDs) != 2 {
			return nil, nil, fmt.Errorf("sysvmsg child needs two queue ids: %w", ErrConfig)
		}
		return newSysvEndpoint(spec.IDs[0], spec.Size), newSysvEndpoint(spec.IDs[1], spec.Size), nil
	case "spsc", "bytering", "mpmc":
		return attachRings(spec)
	}
	return nil, nil, fmt.Errorf("transport %q: %w", spec.Kind, ErrConfig)
}

func closeFDs(fds ...int) error {
	var errs []error
	for _, fd := range fds {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	return errors.Join(errs...)
}

func pipeLink(spec *cellSpec) (*link, error) {
	var up, down [2]int
	if err := unix.Pipe2(up[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe2(down[:], unix.O_CLOEXEC); err != nil {
		closeFDs(up[0], up[1])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	return &link{
		up:      fdStream{up[0]},
		down:    fdStream{down[1]},
		files:   []*os.File{fileOf(up[1], "pipe-up-w"), fileOf(down[0], "pipe-down-r")},
		abort:   func() {},
		release: func() error { return closeFDs(up[0], down[1]) },
	}, nil
}

func socketpairLink(spec *cellSpec, typ int) (*link, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	if typ == unix.SOCK_SEQPACKET {
		if err := fitSeqpacket(fds[:], spec.Size); err != nil {
			closeFDs(fds[0], fds[1])
			return nil, err
		}
		return &link{
			up: fdPacket{fds[0]}, down: fdPacket{fds[0]},
			files: []*os.File{fileOf(fds[1], "seqpacket")},
			abort: func() {}, release: func() error { return closeFDs(fds[0]) },
		}, nil
	}
	return &link{
		up: fdStream{fds[0]}, down: fdStream{fds[0]},
		files: []*os.File{fileOf(fds[1], "unix")},
		abort: func() {}, release: func() error { return closeFDs(fds[0]) },
	}, nil
}

// fitSeqpacket raises the send buffers of a seqpacket pair so that one
// message of size bytes fits (a datagram must fit the sender's buffer), up
// to net.core.wmem_max, and proves it by sending one message across.
// Beyond the limit the cell is n/a.
func fitSeqpacket(fds []int, size int) error {
	want := 2*size + 64<<10
	for _, fd := range fds {
		cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err == nil && cur < want {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, want)
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
	}
	msg := make([]byte, size)
	if err := unix.Sendto(fds[0], msg, unix.MSG_DONTWAIT, nil); err != nil {
		if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
			wmem, _ := procInt(procWmemMax)
			got, _ := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF)
			return unavailable("a %d-byte seqpacket message does not fit the socket send buffer (SO_SNDBUF %d, net.core.wmem_max %d)", size, got, wmem)
		}
		return fmt.Errorf("seqpacket probe: %w", err)
	}
	if _, err := (fdPacket{fds[1]}).recv(msg); err != nil {
		return fmt.Errorf("seqpacket probe: %w", err)
	}
	return nil
}

func tcpLink(spec *cellSpec) (*link, error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	defer closeFDs(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, fmt.Errorf("bind 127.0.0.1: %w", err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	cl, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(cl, sa); err != nil {
		closeFDs(cl)
		return nil, fmt.Errorf("connect %v: %w", sa, err)
	}
	sv, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		closeFDs(cl)
		return nil, fmt.Errorf("accept: %w", err)
	}
	for _, fd := range []int{sv, cl} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			closeFDs(sv, cl)
			return nil, fmt.Errorf("TCP_NODELAY: %w", err)
		}
	}
	return &link{
		up: fdStream{sv}, down: fdStream{sv},
		files: []*os.File{fileOf(cl, "tcp")},
		abort: func() {}, release: func() error { return closeFDs(sv) },
	}, nil
}

// FIFOs: the parent makes two in a private temporary directory and opens
// its ends without blocking; the child opens its ends by path.

// fifoReader is the parent's read end of the up FIFO. Until the first
// byte arrives, end-of-file only means the child has not opened its end
// yet, so recv polls; after that it is a real end-of-file.
type fifoReader struct {
	fdStream
	started bool
	aborted *atomic.Bool
}

func (f *fifoReader) recv(buf []byte) (int, error) {
	for !f.started {
		var one [1]byte
		n, err := unix.Read(f.fd, one[:])
		if err == unix.EINTR || (err == nil && n == 0) {
			if f.aborted.Load() {
				return 0, fmt.Errorf("fifo: aborted before the child opened it")
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read fifo: %w", err)
		}
		f.started = true
		buf[0] = one[0]
		n, err = f.fdStream.recv(buf[1:])
		return n + 1, err
	}
	return f.fdStream.recv(buf)
}

// fifoWriter is the parent's write end of the down FIFO, opened at the
// first send, once the child has opened the read end.
type fifoWriter struct {
	path    string
	fd      int
	aborted *atomic.Bool
}

func (f *fifoWriter) send(msg []byte) error {
	for f.fd < 0 {
		fd, err := unix.Open(f.path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == unix.ENXIO || err == unix.EINTR {
			if f.aborted.Load() {
				return fmt.Errorf("fifo: aborted before the child opened it")
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("open fifo: %w", err)
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			closeFDs(fd)
			return fmt.Errorf("fifo: %w", err)
		}
		f.fd = fd
	}
	return fdStream{f.fd}.send(msg)
}

func (f *fifoWriter) recv([]byte) (int, error) { return 0, fmt.Errorf("fifo writer cannot receive") }

func fifoLink(spec *cellSpec) (*link, error) {
	dir, err := os.MkdirTemp("", "shmkit-bench-fifo-")
	if err != nil {
		return nil, err
	}
	up, down := filepath.Join(dir, "up"), filepath.Join(dir, "down")
	for _, p := range []string{up, down} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mkfifo: %w", err)
		}
	}
	rfd, err := unix.Open(up, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		if err = unix.SetNonblock(rfd, false); err != nil {
			closeFDs(rfd)
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	aborted := new(atomic.Bool)
	w := &fifoWriter{path: down, fd: -1, aborted: aborted}
	spec.Paths = []string{up, down}
	return &link{
		up:    &fifoReader{fdStream: fdStream{rfd}, aborted: aborted},
		down:  w,
		abort: func() { aborted.Store(true) },
		release: func() error {
			err := closeFDs(rfd, w.fd)
			return errors.Join(err, os.RemoveAll(dir))
		},
	}, nil
}

func attachFIFO(spec cellSpec) (up, down endpoint, err error) {
	if len(spec.Paths) != 2 {
		return nil, nil, fmt.Errorf("fifo child needs two paths: %w", ErrConfig)
	}
	w, err := unix.Open(spec.Paths[0], unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open fifo: %w", err)
	}
	if !spec.pingpong() {
		return fdStream{w}, nil, nil
	}
	r, err := unix.Open(spec.Paths[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open fifo: %w", err)
	}
	return fdStream{w}, fdStream{r}, nil
}

var mqSerial atomic.Uint64

func mqLink(spec *cellSpec) (*link, error) {
	sizeMax, err := procInt(procMQMsgSizeMax)
	if err != nil {
		return nil, fmt.Errorf("posixmq: %w", err)
	}
	if spec.Size > sizeMax {
		return nil, unavailable("POSIX mq msgsize_max is %d bytes (%s)", sizeMax, procMQMsgSizeMax)
	}
	maxMsg, err := procInt(procMQMsgMax)
	if err != nil {
		return nil, fmt.Errorf("posixmq: %w", err)
	}
	maxMsg = min(maxMsg, 10)
	var fds []int
	for _, dir := range []string{"up", "down"} {
		name := fmt.Sprintf("shmkit.bench.%d.%d.%s", os.Getpid(), mqSerial.Add(1), dir)
		fd, err := mqOpen(name, maxMsg, spec.Size)
		if err != nil {
			closeFDs(fds...)
			return nil, err
		}
		fds = append(fds, fd)
		// The descriptors are all either side needs: unlink at once, so
		// nothing outlives the run.
		if err := mqUnlink(name); err != nil {
			closeFDs(fds...)
			return nil, err
		}
	}
	// The child gets duplicates; the parent keeps the originals.
	var files []*os.File
	for i, fd := range fds {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			closeFDs(fds...)
			return nil, fmt.Errorf("dup mq descriptor: %w", err)
		}
		files = append(files, fileOf(dup, fmt.Sprintf("mq-%d", i)))
	}
	up, down := newMQEndpoint(fds[0], spec.Timeout), newMQEndpoint(fds[1], spec.Timeout)
	return &link{
		up: up, down: down,
		files: files,
		abort: func() {
			up.poison(spec.Size)
			down.drain(spec.Size)
		},
		release: func() error { return closeFDs(fds...) },
	}, nil
}

func sysvLink(spec *cellSpec) (*link, error) {
	msgmax, err := procInt(procMsgMax)
	if err != nil {
		return nil, fmt.Errorf("sysvmsg: %w", err)
	}
	if spec.Size > msgmax {
		return nil, unavailable("SysV msgmax is %d bytes (%s)", msgmax, procMsgMax)
	}
	if mnb, err := procInt(procMsgMnb); err == nil && spec.Size > mnb {
		return nil, unavailable("SysV msgmnb is %d bytes (%s)", mnb, procMsgMnb)
	}
	var ids []int
	for range 2 {
		id, err := msgGet()
		if err != nil {
			for _, id := range ids {
				msgRemove(id)
			}
			return nil, err
		}
		ids = append(ids, id)
	}
	spec.IDs = ids
	var once atomic.Bool
	remove := func() error {
		if once.Swap(true) {
			return nil
		}
		return errors.Join(msgRemove(ids[0]), msgRemove(ids[1]))
	}
	return &link{
		up: newSysvEndpoint(ids[0], spec.Size), down: newSysvEndpoint(ids[1], spec.Size),
		abort:   func() { remove() },
		release: remove,
	}, nil
}

// Rings: a memfd made by the parent, handed to the child as descriptor 3.

// ringSlots is the number of slots of a fixed-slot ring for messages of
// size bytes: about 1 MiB of slots, at least 4 and at most 1024.
func ringSlots(size int) int {
	n := 1
	for n*2*size <= 1<<20 && n < 1024 {
		n *= 2
	}
	return max(n, 4)
}

// byteRingCap is the capacity of a byte ring for messages of size bytes:
// as many records as ringSlots, a power of two, at least 64 KiB.
func byteRingCap(size int) int {
	want := max(ringSlots(size)*(size+8), 64<<10)
	n := 64
	for n < want {
		n *= 2
	}
	return n
}

// ringSize is the bytes one ring of kind takes for messages of size bytes.
func ringSize(kind string, size int) (int, error) {
	switch kind {
	case "spsc":
		return ring.SPSCSize(ringSlots(size), size)
	case "mpmc":
		return ring.MPMCSize(ringSlots(size), size)
	case "bytering":
		return ring.ByteRingSize(byteRingCap(size))
	}
	return 0, fmt.Errorf("ring kind %q: %w", kind, ErrConfig)
}

func pageAlign(n int) int { return (n + 4095) &^ 4095 }

// newMemfd creates a sealed memfd of size bytes, reserves its memory and
// maps it.
func newMemfd(size int) (int, []byte, error) {
	fd, err := unix.MemfdCreate("shmkit-bench", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		closeFDs(fd)
		return -1, nil, fmt.Errorf("ftruncate memfd: %w", err)
	}
	if err := unix.Fallocate(fd, 0, 0, int64(size)); err != nil {
		closeFDs(fd)
		return -1, nil, fmt.Errorf("fallocate memfd: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
		closeFDs(fd)
		return -1, nil, fmt.Errorf("seal memfd: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		closeFDs(fd)
		return -1, nil, fmt.Errorf("mmap memfd: %w", err)
	}
	return fd, mem, nil
}

// mapFD maps the whole of the memfd at fd (the child's side).
func mapFD(fd int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat memfd: %w", err)
	}
	if st.Size <= 0 || st.Size > 1<<40 {
		return nil, fmt.Errorf("memfd of %d bytes: %w", st.Size, ErrConfig)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap memfd: %w", err)
	}
	return mem, nil
}

// ringEnd is one process's handle on one ring: sending or receiving.
type ringEnd struct {
	spsc *ring.SPSC
	byt  *ring.ByteRing
	mpmc *ring.MPMC
}

var bg = context.Background()

func (r ringEnd) send(msg []byte) error {
	switch {
	case r.spsc != nil:
		return r.spsc.Enqueue(bg, msg)
	case r.byt != nil:
		return r.byt.Write(bg, msg)
	}
	return r.mpmc.Enqueue(bg, msg)
}

func (r ringEnd) recv(buf []byte) (int, error) {
	switch {
	case r.spsc != nil:
		return r.spsc.Dequeue(bg, buf)
	case r.byt != nil:
		return r.byt.Read(bg, buf)
	}
	return r.mpmc.Dequeue(bg, buf)
}

// close marks the ring closed, which wakes and fails both sides' blocked
// calls: the parent's way to abort.
func (r ringEnd) close() {
	switch {
	case r.spsc != nil:
		r.spsc.Close()
	case r.byt != nil:
		r.byt.Close()
	default:
		r.mpmc.Close()
	}
}

func (r *ringEnd) setWaiter(w futex.Waiter) {
	switch {
	case r.spsc != nil:
		r.spsc.SetWaiter(w)
	case r.byt != nil:
		r.byt.SetWaiter(w)
	default:
		r.mpmc.SetWaiter(w)
	}
}

// newRing initialises (attach false) or attaches a ring of kind at mem.
func newRing(kind string, mem []byte, size int, attach bool) (ringEnd, error) {
	var e ringEnd
	var err error
	switch kind {
	case "spsc":
		if attach {
			e.spsc, err = ring.AttachSPSC(mem)
		} else {
			e.spsc, err = ring.NewSPSC(mem, ringSlots(size), size)
		}
	case "bytering":
		if attach {
			e.byt, err = ring.AttachByteRing(mem)
		} else {
			e.byt, err = ring.NewByteRing(mem, byteRingCap(size))
		}
		if err == nil && e.byt.MaxRecord() < size {
			err = fmt.Errorf("byte ring record limit %d under message size %d: %w", e.byt.MaxRecord(), size, ErrConfig)
		}
	case "mpmc":
		if attach {
			e.mpmc, err = ring.AttachMPMC(mem)
		} else {
			e.mpmc, err = ring.NewMPMC(mem, ringSlots(size), size)
		}
	default:
		err = fmt.Errorf("ring kind %q: %w", kind, ErrConfig)
	}
	return e, err
}

func waiterFor(name string) (futex.Waiter, error) {
	s, err := futex.ParseStrategy(name)
	if err != nil {
		return futex.Waiter{}, fmt.Errorf("%v: %w", err, ErrConfig)
	}
	return futex.Waiter{Strategy: s}, nil
}

func ringLink(spec *cellSpec) (*link, error) {
	w, err := waiterFor(spec.Wait)
	if err != nil {
		return nil, err
	}
	one, err := ringSize(spec.Kind, spec.Size)
	if err != nil {
		return nil, err
	}
	off := pageAlign(one)
	fd, mem, err := newMemfd(2 * off)
	if err != nil {
		return nil, err
	}
	up, err := newRing(spec.Kind, mem[:one], spec.Size, false)
	if err == nil {
		var down ringEnd
		down, err = newRing(spec.Kind, mem[off:off+one], spec.Size, false)
		if err == nil {
			up.setWaiter(w)
			down.setWaiter(w)
			spec.Offsets = []int{0, off}
			return &link{
				up: up, down: down,
				files: []*os.File{fileOf(fd, "memfd")},
				// Close through handles of its own: a handle is not safe for
				// concurrent use, and the parent's are busy in send or recv.
				abort: func() {
					for _, region := range [][]byte{mem[:one], mem[off : off+one]} {
						if h, err := newRing(spec.Kind, region, spec.Size, true); err == nil {
							h.close()
						}
					}
				},
				release: func() error {
					return unix.Munmap(mem)
				},
			}, nil
		}
	}
	unix.Munmap(mem)
	closeFDs(fd)
	return nil, err
}

func attachRings(spec cellSpec) (up, down endpoint, err error) {
	w, err := waiterFor(spec.Wait)
	if err != nil {
		return nil, nil, err
	}
	if len(spec.Offsets) != 2 {
		return nil, nil, fmt.Errorf("ring child needs two offsets: %w", ErrConfig)
	}
	mem, err := mapFD(3)
	if err != nil {
		return nil, nil, err
	}
	var ends [2]ringEnd
	for i, off := range spec.Offsets {
		if off < 0 || off >= len(mem) || off%4096 != 0 {
			return nil, nil, fmt.Errorf("ring offset %d in a memfd of %d bytes: %w", off, len(mem), ErrConfig)
		}
		ends[i], err = newRing(spec.Kind, mem[off:], spec.Size, true)
		if err != nil {
			return nil, nil, err
		}
		ends[i].setWaiter(w)
	}
	return ends[0], ends[1], nil
}
