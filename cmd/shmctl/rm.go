package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// rmOut is `shmctl rm -o json`.
type rmOut struct {
	Backend segment.Backend `json:"backend"`
	Name    string          `json:"name"`
	Removed bool            `json:"removed"`
	// Forced is set when --force removed a segment that was in use; Holders
	// then lists who held it (they keep their mappings).
	Forced  bool     `json:"forced,omitempty"`
	Holders []holder `json:"holders,omitempty"`
	// Error says why nothing was removed (with -o json, a refusal or
	// failure prints this object too, and the exit code is as without).
	Error string `json:"error,omitempty"`
}

func init() {
	var (
		bf     backendFlags
		force  bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "rm NAME [--backend posix|sysv|file] [--force] [-o json]",
		Short: "Remove a segment nothing holds (unlink or IPC_RMID); --force removes a live one",
		Long: `rm removes a segment: unlink for POSIX and File, IPC_RMID for SysV. It
refuses (exit 3) while the segment is in use: its creator still runs, a
process maps it or has it open, a SysV attachment remains, or a live
participant is registered in it; the message names the pids. --force removes
it anyway; processes that hold it keep their mappings until they close them.`,
		Example: `  shmctl rm demo
  shmctl rm demo --backend sysv
  shmctl rm /var/lib/app/shm/orders --backend file
  shmctl rm demo --force -o json      # even while processes hold it`,
		Args:              oneArg,
		ValidArgsFunction: completeSegmentNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			out := rmOut{Name: args[0]}
			err := runRm(cmd, args[0], &out)
			if err != nil && output == "json" {
				out.Error = err.Error()
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(out); jerr != nil {
					return errors.Join(err, jerr)
				}
			}
			return err
		}),
	}
	bf.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "remove the segment even while processes hold it")
	addOutputFlag(cmd, &output)
	rootCmd.AddCommand(cmd)

	runRm = func(cmd *cobra.Command, name string, out *rmOut) error {
		b, opts, err := bf.resolve()
		if err != nil {
			return err
		}
		out.Backend = b
		info, err := segment.Stat(b, name, opts)
		if errors.Is(err, segment.ErrNotExist) || errors.Is(err, segment.ErrInvalidName) {
			return err
		}
		locateByName(&info, b, name, opts)
		pt, err := scanProcs()
		if err != nil && !force {
			return fmt.Errorf("cannot tell whether %v segment %q is in use: %w; --force removes it anyway", b, name, err)
		}
		if err == nil {
			j := judge(pt, info)
			if j.Gone {
				return fmt.Errorf("remove %v segment %q: %w", b, name, segment.ErrNotExist)
			}
			if j.InUse && !force {
				out.Holders = j.Holders
				return &exitCodeError{code: exitInUse, err: fmt.Errorf(
					"refused: %v segment %q is in use, %s; --force removes it anyway", b, name, j.Reason)}
			}
			out.Forced, out.Holders = j.InUse, j.Holders
		}
		if err := segment.Remove(b, name, opts); err != nil {
			return err
		}
		out.Removed = true
		if output == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		msg := fmt.Sprintf("removed %v segment %s", b, name)
		if out.Forced {
			msg += fmt.Sprintf(" (forced; still held by %s, which keep their mappings)", holdersText(out.Holders))
		}
		fmt.Fprintln(cmd.OutOrStdout(), msg)
		return nil
	}
}

// runRm is rm's work; it fills out as it goes.
var runRm func(cmd *cobra.Command, name string, out *rmOut) error

// locateByName fills in where a segment lives when Stat could not read its
// header (info then holds only the name and backend).
func locateByName(info *segment.Info, b segment.Backend, name string, opts *segment.Options) {
	info.Backend = b
	switch b {
	case segment.POSIX:
		if info.Path == "" {
			info.Path = segment.POSIXDir + "/" + segment.Prefix + name
		}
	case segment.File:
		info.Path = name
	case segment.SysV:
		if info.SysVKey == 0 {
			info.SysVKey = opts.SysVKey
			if info.SysVKey == 0 {
				info.SysVKey = segment.SysVKey(name)
			}
		}
	}
}
