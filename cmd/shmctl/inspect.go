package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// inspectRegion is a TOC entry in `shmctl inspect -o json`, its kind both
// as FourCC text and as the number.
type inspectRegion struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	KindValue uint32 `json:"kind_value"`
	Offset    int64  `json:"offset"`
	Length    int64  `json:"length"`
	Align     int64  `json:"align"`
}

type inspectOut struct {
	segment.Info
	Regions []inspectRegion `json:"regions"`
}

func init() {
	var (
		bf     backendFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "inspect NAME [--backend posix|sysv|file] [-o json]",
		Short: "Show a segment's header and table of contents",
		Args:  oneArg,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b, opts, err := bf.resolve()
			if err != nil {
				return err
			}
			info, err := segment.Stat(b, args[0], opts)
			if err != nil {
				return err
			}
			out := inspectOut{Info: info, Regions: make([]inspectRegion, len(info.Regions))}
			for i, r := range info.Regions {
				out.Regions[i] = inspectRegion{r.Name, segment.FourCCString(r.Kind), r.Kind, r.Offset, r.Length, r.Align}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			return printInspect(cmd, out)
		}),
	}
	bf.add(cmd)
	addOutputFlag(cmd, &output)
	rootCmd.AddCommand(cmd)
}

func printInspect(cmd *cobra.Command, o inspectOut) error {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	alive := "dead"
	if o.CreatorAlive {
		alive = "alive"
	}
	fmt.Fprintf(w, "name:\t%s\n", o.Name)
	fmt.Fprintf(w, "backend:\t%v\n", o.Backend)
	if o.Path != "" {
		fmt.Fprintf(w, "path:\t%s\n", o.Path)
	}
	if o.Backend == segment.SysV {
		fmt.Fprintf(w, "sysv:\tkey %#08x, shmid %d, %d attached (this inspection included)\n", uint32(o.SysVKey), o.SysVID, o.Attached)
	}
	fmt.Fprintf(w, "layout version:\t%d\n", o.Version)
	fmt.Fprintf(w, "size:\t%s\n", sizeString(o.Size))
	fmt.Fprintf(w, "header size:\t%d\n", o.HeaderSize)
	fmt.Fprintf(w, "mode:\t%#o\n", uint32(o.Mode))
	fmt.Fprintf(w, "creator:\tpid %d, start tick %d, %s\n", o.CreatorPID, o.CreatorStart, alive)
	fmt.Fprintf(w, "created:\t%s\n", o.Created.Format(time.RFC3339Nano))
	fmt.Fprintf(w, "regions:\t%d of %d\n", len(o.Regions), o.TOCCapacity)
	if err := w.Flush(); err != nil {
		return err
	}
	if len(o.Regions) == 0 {
		return nil
	}
	w = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "NAME\tKIND\tOFFSET\tLENGTH\tALIGN\t")
	for _, r := range o.Regions {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t\n", r.Name, r.Kind, r.Offset, r.Length, r.Align)
	}
	return w.Flush()
}
