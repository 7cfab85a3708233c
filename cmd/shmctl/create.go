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
		channel string
		cf      chanCreateFlags
	)
	cmd := &cobra.Command{
		Use:   "create NAME --size SIZE [--backend posix|sysv|file] [--mode 0600] [-o json] | create --channel NAME [channel flags]",
		Short: "Create a shared memory segment, or (--channel) a channel that services join with shmkit.Open",
		Long: `create NAME --size SIZE makes a raw segment (for --backend file, NAME is a
path). create --channel NAME makes a channel with the configuration its
flags give (--pattern, --policy, --max-message, --ring-depth, --publishers,
--subscribers, --processes, --chunks-per-class, --tap-slots, --tap-snap,
--liveness, --backend): one that shmkit.Open (and pub, sub, record, replay)
joins. It is kept (Config.Keep) when no process uses it, until shmctl rm.`,
		Example: `  shmctl create demo --size 1MiB                       # /dev/shm/shmkit.demo, mode 0600
  shmctl create demo --size 64KiB --backend sysv --mode 0640
  shmctl create /var/lib/app/shm/orders --size 16MiB --backend file -o json
  shmctl create --channel orders --max-message 64KiB --ring-depth 1024
  shmctl create --channel jobs --pattern workqueue --subscribers 16 --policy drop-newest -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if channel != "" {
				if len(args) != 0 {
					return fmt.Errorf("create --channel NAME takes no other argument (got %q)", args[0])
				}
				return nil
			}
			return oneArg(cmd, args)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if channel != "" {
				for _, fl := range []string{"size", "toc", "sysv-key"} {
					if f := cmd.Flags().Lookup(fl); f != nil && f.Changed {
						return fmt.Errorf("--%s is for raw segments; a channel is sized by its configuration", fl)
					}
				}
				b, err := channelBackend(&bf)
				if err != nil {
					return err
				}
				if cmd.Flags().Lookup("mode").Changed {
					m, err := parseMode(mode)
					if err != nil {
						return err
					}
					cf.mode = m
				}
				return createChannel(cmd.OutOrStdout(), channel, b, &cf, output)
			}
			for _, fl := range []string{"pattern", "policy", "max-message", "ring-depth", "publishers", "subscribers",
				"processes", "chunks-per-class", "tap-slots", "tap-snap", "liveness", "keep", "group"} {
				if cmd.Flags().Lookup(fl).Changed {
					return fmt.Errorf("--%s is a channel flag: use create --channel NAME", fl)
				}
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
				return enc.Encode(segView(s.Info()))
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
	cmd.Flags().StringVar(&mode, "mode", "0600", "permission bits, octal (a channel: set exactly, whatever the umask; o+w is refused)")
	cmd.Flags().IntVar(&regions, "toc", segment.DefaultTOCCapacity, "table-of-contents capacity, in regions")
	cmd.Flags().StringVar(&channel, "channel", "", "create a channel of this name (with the channel flags) instead of a raw segment")
	cf.add(cmd)
	addOutputFlag(cmd, &output)
	rootCmd.AddCommand(cmd)
}
