package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Severities of a doctor finding. Only sevFail blocks the toolkit.
const (
	sevOK   = "ok"
	sevInfo = "info"
	sevWarn = "warn"
	sevFail = "fail"
)

// finding is one result of `shmctl doctor`.
type finding struct {
	// Check is a stable identifier, such as "devshm.size".
	Check string `json:"check"`
	// Severity is ok, info, warn or fail; fail means the toolkit (or one
	// of its backends) cannot work on this host until it is fixed.
	Severity string `json:"severity"`
	// Finding says what was found, with the figures.
	Finding string `json:"finding"`
	// Fix says what to do about it (empty when nothing is to be done).
	Fix string `json:"fix,omitempty"`
}

type doctorOut struct {
	// Blocked is true when a finding has severity fail (exit code 2).
	Blocked  bool      `json:"blocked"`
	Findings []finding `json:"findings"`
}

func init() {
	var output string
	cmd := &cobra.Command{
		Use:   "doctor [-o json]",
		Short: "Check this host for what shared memory needs, and say how to fix what is wrong",
		Long: `doctor checks the host and prints each finding with its fix: the size, free
space, sticky bit and ownership of /dev/shm (a 64 MB /dev/shm is the default
of container runtimes), POSIX message queue and SysV shared memory limits,
huge pages, the memlock limit, overcommit, the pid namespace (participants in
another pid namespace cannot be checked for liveness), whether gc can read
every process's /proc entries, the kernel features shmkit uses (futex,
futex_waitv, pidfd_open, memfd seals: each probed, not guessed from the
version) and segments nothing holds any more. It changes nothing.

Exit code 0: nothing blocks the toolkit (warnings may remain); 2: at least
one finding of severity fail; 1: doctor itself failed.`,
		Example: `  shmctl doctor
  shmctl doctor -o json | jq '.findings[] | select(.severity != "ok")'
  shmctl doctor || echo "shared memory will not work here"`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: oneLine(func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			out := doctorOut{Findings: runChecks()}
			for _, f := range out.Findings {
				out.Blocked = out.Blocked || f.Severity == sevFail
			}
			if err := printDoctor(cmd.OutOrStdout(), output, out); err != nil {
				return err
			}
			if out.Blocked {
				return &exitCodeError{code: exitBlocked, err: fmt.Errorf(
					"doctor: %d finding(s) block the toolkit (severity fail)", count(out.Findings, sevFail))}
			}
			return nil
		}),
	}
	addOutputFlag(cmd, &output)
	rootCmd.AddCommand(cmd)
}

func count(fs []finding, sev string) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

func printDoctor(w io.Writer, output string, out doctorOut) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, f := range out.Findings {
		fmt.Fprintf(w, "%-6s %-18s %s\n", strings.ToUpper(f.Severity), f.Check, f.Finding)
		if f.Fix != "" {
			fmt.Fprintf(w, "%-6s %-18s fix: %s\n", "", "", f.Fix)
		}
	}
	_, err := fmt.Fprintf(w, "%d ok, %d info, %d warnings, %d blocking\n", count(out.Findings, sevOK),
		count(out.Findings, sevInfo), count(out.Findings, sevWarn), count(out.Findings, sevFail))
	return err
}
