// Package errs makes sentinel errors that keep their own package's text and
// also match the standard library's error for the same condition, so that
// errors.Is(err, shmkit.ErrClosed) and errors.Is(err, os.ErrClosed) both
// hold (docs/architecture.md, "Errors"). Every package of the module that
// has such a sentinel makes it here; nothing else belongs in this package.
package errs

// sentinel is an error with its own text that errors.Is also matches
// against std.
type sentinel struct {
	msg string
	std error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is the standard error e stands for. (errors.Is
// checks identity with e itself before it calls Is.)
func (e *sentinel) Is(target error) bool { return target == e.std }

// New returns a sentinel error with text msg that errors.Is matches both
// by identity and against std (os.ErrClosed, os.ErrNotExist, ...).
func New(msg string, std error) error { return &sentinel{msg: msg, std: std} }
