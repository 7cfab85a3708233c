//go:build !linux

package shmkit

import "fmt"

// Server owns a private channel (Linux only).
type Server struct {
	// Channel is the owner's own handle on the channel.
	Channel *Channel
}

// Listen needs memfd, SO_PEERCRED and SCM_RIGHTS: Linux only.
func Listen(addr string, cfg Config, access Access, opts ...Option) (*Server, error) {
	return nil, fmt.Errorf("%w: private channels", ErrUnsupported)
}

// Addr returns the socket's address.
func (s *Server) Addr() string { return "" }

// Close does nothing off Linux.
func (s *Server) Close() error { return nil }

// Dial needs Linux.
func Dial(addr string, opts ...Option) (*Channel, error) {
	return nil, fmt.Errorf("%w: private channels", ErrUnsupported)
}
