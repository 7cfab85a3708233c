package shmkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Server owns a private channel: a sealed memfd that is named nowhere, so
// nothing is left behind when its last holder exits, and a Unix socket on
// which it hands the memfd to admitted peers. Data never flows over the
// socket. A peer's connection stays open while it uses the channel; when
// it closes (the peer left or died), the owner checks the participants at
// once, so a dead peer is cleaned up immediately rather than at the next
// liveness interval.
type Server struct {
	// Channel is the owner's own handle on the channel.
	Channel *Channel
	ln      *net.UnixListener
	access  Access
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*net.UnixConn]struct{}
	closed  bool
}

// Listen creates a private channel with configuration cfg (its Backend is
// forced to Memfd) and serves it on the Unix socket addr: a path, or an
// abstract name starting with "@". Peers join with Dial.
func Listen(addr string, cfg Config, access Access, opts ...Option) (*Server, error) {
	cfg.Backend = Memfd
	ch, err := Create("private", cfg, opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("listen on %s: %w", addr, err), ch.Close())
	}
	s := &Server{Channel: ch, ln: ln, access: access, conns: map[*net.UnixConn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the socket's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.handle(c)
	}
}

// handle checks a peer's credentials, passes the memfd, and waits for the
// connection to close: the peer's death signal.
func (s *Server) handle(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	peer, err := peerCred(c)
	if err != nil || !s.access.admits(peer, os.Getuid()) {
		_, _ = c.Write([]byte{'N'})
		return
	}
	rights := unix.UnixRights(int(s.Channel.File().Fd()))
	if _, _, err := c.WriteMsgUnix([]byte{'Y'}, rights, nil); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c) // until the peer closes or dies
	s.Channel.scan(true)
}

func peerCred(c *net.UnixConn) (Peer, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// Close stops serving, closes every peer connection and the owner's
// channel handle. The channel's memory lives on while peers hold it.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return errors.Join(err, s.Channel.Close())
}

// Dial joins the private channel served on addr. It fails with ErrRefused
// when the owner does not admit this process. The connection stays open
// until the returned Channel is closed.
func Dial(addr string, opts ...Option) (*Channel, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil || n != 1 {
		c.Close()
		if err == nil || errors.Is(err, io.EOF) {
			err = ErrRefused
		}
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if buf[0] != 'Y' {
		c.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, ErrRefused)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		c.Close()
		return nil, fmt.Errorf("%w: dial %s: no descriptor passed (%v)", ErrCorrupt, addr, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		c.Close()
		return nil, fmt.Errorf("%w: dial %s: %d descriptors passed (%v)", ErrCorrupt, addr, len(fds), err)
	}
	f := os.NewFile(uintptr(fds[0]), "private-channel")
	ch, err := OpenFile(f, opts...)
	f.Close() // OpenFile keeps its own duplicate
	if err != nil {
		c.Close()
		return nil, err
	}
	ch.conn = c
	return ch, nil
}
