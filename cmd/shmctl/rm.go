package main

import (
	"fmt"

	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

func init() {
	var bf backendFlags
	cmd := &cobra.Command{
		Use:   "rm NAME [--backend posix|sysv|file]",
		Short: "Remove a segment (unlink or IPC_RMID); attached processes keep their mappings",
		Args:  oneArg,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			b, opts, err := bf.resolve()
			if err != nil {
				return err
			}
			if err := segment.Remove(b, args[0], opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %v segment %s\n", b, args[0])
			return nil
		}),
	}
	bf.add(cmd)
	rootCmd.AddCommand(cmd)
}
