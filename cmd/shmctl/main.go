// Command shmctl manages, inspects, cleans and benchmarks shmkit shared
// memory segments from the shell.
//
//	shmctl create NAME --size 1MiB [--backend posix|sysv|file] [--mode 0600]
//	shmctl ls [-o json] [--dir DIR]
//	shmctl inspect NAME [--backend ...] [-o json]
//	shmctl rm NAME [--backend ...]
//	shmctl bench [flags]
//
// Wrong input exits non-zero with one line on stderr.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the top of the command tree; each subcommand lives in a file of
// its own and adds itself in an init function.
var rootCmd = &cobra.Command{
	Use:           "shmctl",
	Short:         "Manage, inspect and benchmark shmkit shared memory segments",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "shmctl: %v\n", err)
		os.Exit(1)
	}
}
