// Command shmctl manages, inspects, cleans and benchmarks shmkit shared
// memory segments from the shell.
//
//	shmctl create NAME --size 1MiB [--backend posix|sysv|file] [--mode 0600] [-o json]
//	shmctl create --channel NAME [--pattern ...] [--max-message ...] [--ring-depth ...] [-o json]
//	shmctl pub NAME [MESSAGE...] [--file F | --count N --size S --rate R] [-o json]
//	shmctl sub NAME [--count N] [--timeout D] [--hex] [-o json]
//	shmctl record NAME -o FILE [--tap] [--count N] [--duration D]
//	shmctl replay FILE NAME [--speed X | --max]
//	shmctl ls [-o json] [--dir DIR]
//	shmctl inspect NAME [--backend ...] [-o json]
//	shmctl stat NAME [--interval 1s] [-o json]
//	shmctl watch NAME [--interval 1s] [--count N] [-o json]
//	shmctl tap NAME [-n COUNT] [--hex] [-o json] [--pcapng FILE]
//	shmctl metrics [--listen 127.0.0.1:9464] [--dir DIR]
//	shmctl rm NAME [--backend ...] [--force] [-o json]
//	shmctl gc [--dry-run] [--match GLOB] [--backend ...] [--dir DIR] [--all-users] [-o json]
//	shmctl bridge CHANNEL [--server URL] [--direction out|in|both] [--jetstream STREAM]
//	shmctl doctor [-o json]
//	shmctl bench [flags]
//	shmctl completion bash|zsh|fish
//
// Wrong input exits non-zero with one line on stderr; docs/shmctl.md lists
// the exit codes.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes (docs/shmctl.md lists them too).
const (
	exitOK      = 0 // success; doctor: nothing blocks the toolkit (warnings may remain)
	exitError   = 1 // bad input, or the operation failed
	exitBlocked = 2 // doctor: at least one finding blocks the toolkit
	exitInUse   = 3 // rm: the segment is in use and --force was not given
)

// rootCmd is the top of the command tree; each subcommand lives in a file of
// its own and adds itself in an init function.
var rootCmd = &cobra.Command{
	Use:   "shmctl",
	Short: "Manage, inspect, clean and benchmark shmkit shared memory segments and channels",
	Example: `  shmctl create demo --size 1MiB
  shmctl create --channel orders
  shmctl pub orders hello; shmctl sub orders -o json
  shmctl ls
  shmctl gc --dry-run
  shmctl doctor`,
	SilenceUsage:  true,
	SilenceErrors: true,
	// The completion command is completion.go's, with examples.
	CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
}

// exitCodeError carries an exit code other than exitError; its message may
// be empty when the command has already said everything on stdout.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitCodeError) Unwrap() error { return e.err }

func main() {
	err := rootCmd.Execute()
	if err == nil {
		return
	}
	code := exitError
	var ce *exitCodeError
	if errors.As(err, &ce) {
		code = ce.code
		if ce.err == nil {
			os.Exit(code)
		}
	}
	fmt.Fprintf(os.Stderr, "shmctl: %v\n", err)
	os.Exit(code)
}
