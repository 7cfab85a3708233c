package shmkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"unsafe"

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
	if !strings.HasPrefix(addr, "@") {
		// The socket file was made 0777 &^ umask; narrow it to what access
		// admits (the check at accept stays the one that decides).
		mode, gid := access.socketMode(os.Getuid())
		err := os.Chown(addr, -1, gid)
		if err == nil {
			err = os.Chmod(addr, os.FileMode(mode))
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("listen on %s: set the socket's mode %#o: %w", addr, mode, err), ln.Close(), ch.Close())
		}
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
	p := Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
	_ = rc.Control(func(fd uintptr) { p.Groups = peerGroups(int(fd)) })
	return p, nil
}

// peerGroups returns the supplementary groups of a Unix socket's peer
// (SO_PEERGROUPS, Linux 4.13), or nil.
func peerGroups(fd int) []int {
	buf := make([]uint32, 64)
	for range 2 {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == unix.ERANGE && int(n/4) > len(buf):
			buf = make([]uint32, n/4) // n says how much is needed
			continue
		case e != 0:
			return nil
		}
		out := make([]int, 0, n/4)
		for _, g := range buf[:min(int(n/4), len(buf))] {
			out = append(out, int(g))
		}
		return out
	}
	return nil
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

// Dial joins the private channel served on addr. It fails with
// ErrUntrusted when the server runs as a uid other than this process's
// and those named with WithOwner (checked before anything is read from
// it), and with ErrRefused when the owner does not admit this process. The connection stays open
// until the returned Channel is closed.
func Dial(addr string, opts ...Option) (*Channel, error) {
	o := buildOptions(opts)
	if o.trust.err != nil {
		return nil, fmt.Errorf("dial %s: %w: %w", addr, ErrConfig, o.trust.err)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	// Who listens is who the kernel says (SO_PEERCRED of the server, taken
	// at its listen): anyone can listen first on an abstract name, or on a
	// path in a directory others can write (docs/security.md, defect 4).
	srv, err := peerCred(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: server credentials: %w", addr, err)
	}
	if srv.UID != os.Geteuid() && !slices.Contains(o.trust.owners, srv.UID) {
		c.Close()
		return nil, fmt.Errorf("dial %s: %w: the server (pid %d) runs as uid %d, not as this process's uid %d or one named with WithOwner",
			addr, ErrUntrusted, srv.PID, srv.UID, os.Geteuid())
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
