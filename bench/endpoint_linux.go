//go:build linux

package bench

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// endpoint moves whole messages one way (or both ways, for sockets). The
// message size of a cell is fixed and known to both sides, so a byte-stream
// transport reads exactly len(buf) bytes.
type endpoint interface {
	// send transmits msg whole, blocking while the transport is full.
	send(msg []byte) error
	// recv receives the next message into buf and returns its length,
	// blocking while there is none.
	recv(buf []byte) (int, error)
}

// fdStream is a byte-stream file descriptor (pipe, FIFO, stream socket)
// used with blocking read and write system calls: the fastest a Go
// program can drive it (no poller round trip).
type fdStream struct{ fd int }

func (s fdStream) send(msg []byte) error {
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

func (s fdStream) recv(buf []byte) (int, error) {
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

func (s fdPacket) send(msg []byte) error {
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

func (s fdPacket) recv(buf []byte) (int, error) {
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
			return n, fmt.Errorf("recvmsg: message truncated to %d bytes: %w", n, ErrCorrupt)
		}
		return n, nil
	}
}

// fileOf wraps a raw descriptor for exec.Cmd.ExtraFiles.
func fileOf(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }
