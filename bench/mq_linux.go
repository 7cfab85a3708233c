//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// POSIX message queues and SysV message queues through raw system calls:
// golang.org/x/sys/unix has their numbers but no wrappers.

// mqAttr is struct mq_attr of linux/amd64 (and every 64-bit Linux).
type mqAttr struct {
	Flags   int64
	MaxMsg  int64
	MsgSize int64
	CurMsgs int64
	_       [4]int64
}

// procInt reads an integer from a /proc file.
func procInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

const (
	procMQMsgMax     = "/proc/sys/fs/mqueue/msg_max"
	procMQMsgSizeMax = "/proc/sys/fs/mqueue/msgsize_max"
	procMsgMax       = "/proc/sys/kernel/msgmax"
	procMsgMnb       = "/proc/sys/kernel/msgmnb"
	procWmemMax      = "/proc/sys/net/core/wmem_max"
)

// mqOpen creates a queue with the given name (no leading '/': the raw
// system call takes the name as glibc passes it) and attributes.
func mqOpen(name string, maxMsg, msgSize int) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	attr := mqAttr{MaxMsg: int64(maxMsg), MsgSize: int64(msgSize)}
	fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC), 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("mq_open %q (maxmsg %d, msgsize %d): %w", name, maxMsg, msgSize, errno)
	}
	return int(fd), nil
}

func mqUnlink(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0); errno != 0 {
		return fmt.Errorf("mq_unlink %q: %w", name, errno)
	}
	return nil
}

// mqEndpoint sends and receives on a POSIX message queue. Every call has an
// absolute deadline (CLOCK_REALTIME), so a vanished peer cannot block it
// for ever.
type mqEndpoint struct {
	fd       int
	deadline unix.Timespec
}

func newMQEndpoint(fd int, timeout time.Duration) *mqEndpoint {
	return &mqEndpoint{fd: fd, deadline: unix.NsecToTimespec(time.Now().Add(timeout).UnixNano())}
}

func (q *mqEndpoint) write(msg []byte) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(q.fd), uintptr(unsafe.Pointer(unsafe.SliceData(msg))),
			uintptr(len(msg)), 0, uintptr(unsafe.Pointer(&q.deadline)), 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("mq_timedsend: %w", errno)
	}
}

func (q *mqEndpoint) read(buf []byte) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(q.fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))),
			uintptr(len(buf)), 0, uintptr(unsafe.Pointer(&q.deadline)), 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, fmt.Errorf("mq_timedreceive: %w", errno)
	}
}

// poison makes a receiver blocked on q return at once: it sends an
// all-zero message (which fails verification) without waiting.
func (q *mqEndpoint) poison(size int) {
	past := unix.Timespec{}
	buf := make([]byte, size)
	unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(q.fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))),
		uintptr(len(buf)), 0, uintptr(unsafe.Pointer(&past)), 0)
}

// drain takes one message off q without waiting, to free a blocked sender.
func (q *mqEndpoint) drain(size int) {
	past := unix.Timespec{}
	buf := make([]byte, size)
	unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(q.fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))),
		uintptr(len(buf)), 0, uintptr(unsafe.Pointer(&past)), 0)
}

// SysV message queues.
const (
	ipcPrivate = 0
	ipcCreat   = 0o1000
	ipcRmid    = 0
)

func msgGet() (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_MSGGET, ipcPrivate, ipcCreat|0o600, 0)
	if errno != 0 {
		return -1, fmt.Errorf("msgget: %w", errno)
	}
	return int(id), nil
}

func msgRemove(id int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), ipcRmid, 0); errno != 0 {
		return fmt.Errorf("msgctl IPC_RMID %d: %w", id, errno)
	}
	return nil
}

// sysvEndpoint sends and receives on a SysV message queue. The API wants
// the message type word in front of the bytes, so each call copies the
// message through a buffer of its own (one memcpy per message, which the
// API imposes on any caller whose messages are not laid out that way).
type sysvEndpoint struct {
	id  int
	buf []byte // 8-byte mtype, then the message
}

func newSysvEndpoint(id, size int) *sysvEndpoint {
	return &sysvEndpoint{id: id, buf: make([]byte, 8+size)}
}

func (q *sysvEndpoint) write(msg []byte) error {
	*(*int64)(unsafe.Pointer(&q.buf[0])) = 1
	n := copy(q.buf[8:], msg)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_MSGSND, uintptr(q.id), uintptr(unsafe.Pointer(&q.buf[0])), uintptr(n), 0, 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("msgsnd: %w", errno)
	}
}

func (q *sysvEndpoint) read(buf []byte) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_MSGRCV, uintptr(q.id), uintptr(unsafe.Pointer(&q.buf[0])), uintptr(len(q.buf)-8), 0, 0, 0)
		switch errno {
		case 0:
			return copy(buf, q.buf[8:8+int(n)]), nil
		case unix.EINTR:
			continue
		}
		return 0, fmt.Errorf("msgrcv: %w", errno)
	}
}

// The message-queue transports.
type mqKind string

func init() {
	register(mqKind("posixmq"))
	register(mqKind("sysvmsg"))
}

func (k mqKind) name() string { return string(k) }
func (mqKind) family() string { return FamilyOS }
func (mqKind) waits() bool    { return false }

func (k mqKind) open(c *cell) (*link, error) {
	if k == "posixmq" {
		return mqLink(c)
	}
	return sysvLink(c)
}

type sysvArgs struct {
	IDs []int `json:"ids"` // up, down
}

func (k mqKind) attach(c *cell, files []*os.File) (ends, error) {
	if k == "posixmq" {
		if len(files) != 2 {
			return ends{}, fmt.Errorf("%w: posixmq child needs two descriptors", ErrConfig)
		}
		return copyEnds(newMQEndpoint(int(files[0].Fd()), c.Timeout), newMQEndpoint(int(files[1].Fd()), c.Timeout), c.Size), nil
	}
	var a sysvArgs
	if err := c.args(&a); err != nil {
		return ends{}, err
	}
	if len(a.IDs) != 2 {
		return ends{}, fmt.Errorf("%w: sysvmsg child needs two queue ids", ErrConfig)
	}
	return copyEnds(newSysvEndpoint(a.IDs[0], c.Size), newSysvEndpoint(a.IDs[1], c.Size), c.Size), nil
}

var mqSerial atomic.Uint64

func mqLink(c *cell) (*link, error) {
	sizeMax, err := procInt(procMQMsgSizeMax)
	if err != nil {
		return nil, fmt.Errorf("posixmq: %w", err)
	}
	if c.Size > sizeMax {
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
		fd, err := mqOpen(name, maxMsg, c.Size)
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
	up, down := newMQEndpoint(fds[0], c.Timeout), newMQEndpoint(fds[1], c.Timeout)
	return &link{
		ends:  copyEnds(down, up, c.Size),
		files: files,
		abort: func() {
			up.poison(c.Size)
			down.drain(c.Size)
		},
		release: func() error { return closeFDs(fds...) },
	}, nil
}

func sysvLink(c *cell) (*link, error) {
	msgmax, err := procInt(procMsgMax)
	if err != nil {
		return nil, fmt.Errorf("sysvmsg: %w", err)
	}
	if c.Size > msgmax {
		return nil, unavailable("SysV msgmax is %d bytes (%s)", msgmax, procMsgMax)
	}
	if mnb, err := procInt(procMsgMnb); err == nil && c.Size > mnb {
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
	var once atomic.Bool
	remove := func() error {
		if once.Swap(true) {
			return nil
		}
		return errors.Join(msgRemove(ids[0]), msgRemove(ids[1]))
	}
	if err := c.setArgs(sysvArgs{IDs: ids}); err != nil {
		return nil, errors.Join(err, remove())
	}
	return &link{
		ends:    copyEnds(newSysvEndpoint(ids[1], c.Size), newSysvEndpoint(ids[0], c.Size), c.Size),
		abort:   func() { remove() },
		release: remove,
	}, nil
}
