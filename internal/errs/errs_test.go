package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

func TestNew(t *testing.T) {
	closed := New("pkg: closed", os.ErrClosed)
	other := New("pkg: closed", os.ErrClosed)
	err := fmt.Errorf("read: %w", closed)
	if !errors.Is(err, closed) || !errors.Is(err, os.ErrClosed) || !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("%v does not match its sentinel and os.ErrClosed", err)
	}
	if errors.Is(err, other) || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%v matches a sentinel it is not", err)
	}
	if closed.Error() != "pkg: closed" {
		t.Fatalf("text %q", closed.Error())
	}
}
