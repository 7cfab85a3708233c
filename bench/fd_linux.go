//go:build linux

package bench

// The byte-stream and packet transports of the operating system: an
// anonymous pipe, a named FIFO, Unix stream and seqpacket socket pairs and
// a loopback TCP connection, driven with blocking read and write system
// calls straight from golang.org/x/sys/unix (no Go poller round trip: the
// fastest a Go program can drive them).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// fdStream is a byte-stream file descriptor. The message size of a cell is
// fixed and known to both sides, so it reads exactly len(buf) bytes.
type fdStream struct{ fd int }

func (s fdStream) write(msg []byte) error {
	for len(msg) > 0 {
		n, err := unix.Write(s.fd, msg)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		msg = msg[n:]
	}
	return nil
}

func (s fdStream) read(buf []byte) (int, error) {
	got := 0
	for got < len(buf) {
		n, err := unix.Read(s.fd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return got, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return got, fmt.Errorf("read after %d of %d bytes: %w", got, len(buf), io.ErrUnexpectedEOF)
		}
		got += n
	}
	return got, nil
}

// fdPacket is a message-preserving socket (SOCK_SEQPACKET): one send, one
// message.
type fdPacket struct{ fd int }

func (s fdPacket) write(msg []byte) error {
	for {
		err := unix.Send(s.fd, msg, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
}

func (s fdPacket) read(buf []byte) (int, error) {
	for {
		n, _, flags, _, err := unix.Recvmsg(s.fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("recvmsg: %w", err)
		}
		if n == 0 {
			return 0, fmt.Errorf("recvmsg: %w", io.EOF)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return n, fmt.Errorf("%w: recvmsg: message truncated to %d bytes", ErrCorrupt, n)
		}
		return n, nil
	}
}

// fileOf wraps a raw descriptor for exec.Cmd.ExtraFiles.
func fileOf(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

func closeFDs(fds ...int) error {
	var errs []error
	for _, fd := range fds {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	return errors.Join(errs...)
}

// fdKind is one of the descriptor transports.
type fdKind string

func init() {
	for _, k := range []fdKind{"pipe", "fifo", "unix", "seqpacket", "tcp"} {
		register(k)
	}
}

func (k fdKind) name() string { return string(k) }
func (fdKind) family() string { return FamilyOS }
func (fdKind) waits() bool    { return false }

func (k fdKind) open(c *cell) (*link, error) {
	switch k {
	case "pipe":
		return pipeLink(c)
	case "fifo":
		return fifoLink(c)
	case "unix":
		return socketpairLink(c, unix.SOCK_STREAM)
	case "seqpacket":
		return socketpairLink(c, unix.SOCK_SEQPACKET)
	}
	return tcpLink(c)
}

func (k fdKind) attach(c *cell, files []*os.File) (ends, error) {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	switch k {
	case "fifo":
		return attachFIFO(c)
	case "pipe":
		if len(fds) != 2 {
			return ends{}, fmt.Errorf("%w: pipe child needs two descriptors", ErrConfig)
		}
		return copyEnds(fdStream{fds[0]}, fdStream{fds[1]}, c.Size), nil
	}
	if len(fds) != 1 {
		return ends{}, fmt.Errorf("%w: %s child needs one descriptor", ErrConfig, k)
	}
	if k == "seqpacket" {
		return copyEnds(fdPacket{fds[0]}, fdPacket{fds[0]}, c.Size), nil
	}
	return copyEnds(fdStream{fds[0]}, fdStream{fds[0]}, c.Size), nil
}

func pipeLink(c *cell) (*link, error) {
	var up, down [2]int
	if err := unix.Pipe2(up[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe2(down[:], unix.O_CLOEXEC); err != nil {
		closeFDs(up[0], up[1])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	return &link{
		ends:    copyEnds(fdStream{down[1]}, fdStream{up[0]}, c.Size),
		files:   []*os.File{fileOf(up[1], "pipe-up-w"), fileOf(down[0], "pipe-down-r")},
		release: func() error { return closeFDs(up[0], down[1]) },
	}, nil
}

func socketpairLink(c *cell, typ int) (*link, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	l := &link{
		files:   []*os.File{fileOf(fds[1], "socket")},
		release: func() error { return closeFDs(fds[0]) },
	}
	if typ == unix.SOCK_SEQPACKET {
		if err := fitSeqpacket(fds[:], c.Size); err != nil {
			closeFDs(fds[0], fds[1])
			return nil, err
		}
		l.ends = copyEnds(fdPacket{fds[0]}, fdPacket{fds[0]}, c.Size)
		return l, nil
	}
	l.ends = copyEnds(fdStream{fds[0]}, fdStream{fds[0]}, c.Size)
	return l, nil
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
	if _, err := (fdPacket{fds[1]}).read(msg); err != nil {
		return fmt.Errorf("seqpacket probe: %w", err)
	}
	return nil
}

func tcpLink(c *cell) (*link, error) {
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
		ends:    copyEnds(fdStream{sv}, fdStream{sv}, c.Size),
		files:   []*os.File{fileOf(cl, "tcp")},
		release: func() error { return closeFDs(sv) },
	}, nil
}

// FIFOs: the parent makes two in a private temporary directory and opens
// its ends without blocking; the child opens its ends by path.

type fifoArgs struct {
	Paths []string `json:"paths"` // up, down
}

// fifoReader is the parent's read end of the up FIFO. Until the first
// byte arrives, end-of-file only means the child has not opened its end
// yet, so read polls; after that it is a real end-of-file.
type fifoReader struct {
	fdStream
	started bool
	aborted *atomic.Bool
}

func (f *fifoReader) read(buf []byte) (int, error) {
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
		n, err = f.fdStream.read(buf[1:])
		return n + 1, err
	}
	return f.fdStream.read(buf)
}

// fifoWriter is the parent's write end of the down FIFO, opened at the
// first write, once the child has opened the read end.
type fifoWriter struct {
	path    string
	fd      int
	aborted *atomic.Bool
}

func (f *fifoWriter) write(msg []byte) error {
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
	return fdStream{f.fd}.write(msg)
}

func fifoLink(c *cell) (*link, error) {
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
	if err == nil {
		err = c.setArgs(fifoArgs{Paths: []string{up, down}})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	aborted := new(atomic.Bool)
	w := &fifoWriter{path: down, fd: -1, aborted: aborted}
	return &link{
		ends:  copyEnds(w, &fifoReader{fdStream: fdStream{rfd}, aborted: aborted}, c.Size),
		abort: func() { aborted.Store(true) },
		release: func() error {
			err := closeFDs(rfd, w.fd)
			return errors.Join(err, os.RemoveAll(dir))
		},
	}, nil
}

func attachFIFO(c *cell) (ends, error) {
	var a fifoArgs
	if err := c.args(&a); err != nil {
		return ends{}, err
	}
	if len(a.Paths) != 2 {
		return ends{}, fmt.Errorf("%w: fifo child needs two paths", ErrConfig)
	}
	w, err := unix.Open(a.Paths[0], unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ends{}, fmt.Errorf("open fifo: %w", err)
	}
	if !c.pingpong() {
		return copyEnds(fdStream{w}, nil, c.Size), nil
	}
	r, err := unix.Open(a.Paths[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ends{}, fmt.Errorf("open fifo: %w", err)
	}
	return copyEnds(fdStream{w}, fdStream{r}, c.Size), nil
}
