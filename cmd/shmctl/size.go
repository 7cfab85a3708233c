package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// parseSize reads a size such as 4096, 64KiB, 1MiB or 2GB (go-humanize:
// KiB/MiB are powers of 1024, kB/MB powers of 1000).
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 4096, 64KiB, 1MiB)", s)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(n), nil
}

// parseMode reads an octal permission mode such as 0600 or 640.
func parseMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return 0, fmt.Errorf("invalid mode %q (want octal permission bits, e.g. 0600)", s)
	}
	return os.FileMode(m), nil
}

// backendFlags are the flags naming a segment: --backend and --sysv-key.
type backendFlags struct {
	backend string
	sysvKey string
}

func (f *backendFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.backend, "backend", "posix", "posix, sysv or file (for file, NAME is a path)")
	cmd.Flags().StringVar(&f.sysvKey, "sysv-key", "", "SysV key to use instead of the one derived from NAME (e.g. 0x1234)")
	registerBackendCompletion(cmd, "backend")
}

// resolve returns the backend and the segment options the flags give.
func (f *backendFlags) resolve() (segment.Backend, *segment.Options, error) {
	b, err := segment.ParseBackend(f.backend)
	if err != nil || b == segment.Memfd {
		return 0, nil, fmt.Errorf("invalid --backend %q (want posix, sysv or file; memfd segments have no name)", f.backend)
	}
	opts := &segment.Options{}
	if f.sysvKey != "" {
		k, err := strconv.ParseInt(f.sysvKey, 0, 64)
		if err != nil || k == 0 || k < math.MinInt32 || k > math.MaxUint32 {
			return 0, nil, fmt.Errorf("invalid --sysv-key %q (want a non-zero 32-bit number)", f.sysvKey)
		}
		if b != segment.SysV {
			return 0, nil, fmt.Errorf("--sysv-key needs --backend sysv")
		}
		opts.SysVKey = int32(uint32(k))
	}
	return b, opts, nil
}

// outputFlag is -o/--output: "text" or "json".
func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("invalid --output %q (want text or json)", o)
	}
	return nil
}

func sizeString(n int64) string {
	return fmt.Sprintf("%d (%s)", n, humanize.IBytes(uint64(n)))
}

// oneArg accepts exactly one positional argument, and otherwise says how the
// command is used, in one line.
func oneArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: shmctl %s", cmd.Use)
	}
	return nil
}

// oneLine keeps a command's error to one line (errors.Join separates with
// newlines), so `shmctl: <err>` stays a single line on stderr.
func oneLine(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := run(cmd, args); err != nil {
			return flatError{err}
		}
		return nil
	}
}

type flatError struct{ err error }

func (e flatError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e flatError) Unwrap() error { return e.err }
