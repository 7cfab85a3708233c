package main

import (
	"encoding/json"
	"fmt"

	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

func init() {
	var (
		bf      backendFlags
		size    string
		mode    string
		regions int
		output  string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --size SIZE [--backend posix|sysv|file] [--mode 0600] [-o json]",
		Short: "Create a shared memory segment (for --backend file, NAME is a path)",
		Example: `  shmctl create demo --size 1MiB                       # /dev/shm/shmkit.demo, mode 0600
  shmctl create demo --size 64KiB --backend sysv --mode 0640
  shmctl create /var/lib/app/shm/orders --size 16MiB --backend file -o json`,
		Args: oneArg,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b, opts, err := bf.resolve()
			if err != nil {
				return err
			}
			if size == "" {
				return fmt.Errorf("--size is required (e.g. --size 1MiB)")
			}
			n, err := parseSize(size)
			if err != nil {
				return err
			}
			if opts.Mode, err = parseMode(mode); err != nil {
				return err
			}
			opts.TOCCapacity = regions
			s, err := segment.Create(b, args[0], n, opts)
			if err != nil {
				return err
			}
			defer s.Close()
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s.Info())
			}
			where := s.Path()
			if b == segment.SysV {
				where = fmt.Sprintf("key %#08x", uint32(s.Info().SysVKey))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %v segment %s, %s bytes, %s\n", b, s.Name(), sizeString(s.Size()), where)
			return nil
		}),
	}
	bf.add(cmd)
	cmd.Flags().StringVar(&size, "size", "", "total size, header included (e.g. 64KiB, 1MiB)")
	cmd.Flags().StringVar(&mode, "mode", "0600", "permission bits, octal")
	cmd.Flags().IntVar(&regions, "toc", segment.DefaultTOCCapacity, "table-of-contents capacity, in regions")
	addOutputFlag(cmd, &output)
	rootCmd.AddCommand(cmd)
}
