package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

// segJSON is a segment header as -o json shows it (ls, create, inspect):
// segment.Info with the mode as octal text ("0600") and region kinds by
// name (FourCC text, with the number in kind_value).
type segJSON struct {
	segment.Info
	Mode    string          `json:"mode"`
	Regions []inspectRegion `json:"regions"`
}

func segView(info segment.Info) segJSON {
	v := segJSON{Info: info, Mode: fmt.Sprintf("%04o", uint32(info.Mode.Perm())), Regions: make([]inspectRegion, len(info.Regions))}
	for i, r := range info.Regions {
		v.Regions[i] = inspectRegion{Name: r.Name, Kind: segment.FourCCString(r.Kind), KindValue: r.Kind,
			Offset: r.Offset, Length: r.Length, Align: r.Align}
	}
	return v
}

// lsEntry is one segment in `shmctl ls -o json`.
type lsEntry struct {
	segJSON
	Error string `json:"error,omitempty"`
}

func init() {
	var (
		output string
		dirs   []string
	)
	cmd := &cobra.Command{
		Use:   "ls [-o json] [--dir DIR]...",
		Short: "List shmkit segments on every backend (file segments in the --dir directories)",
		Example: `  shmctl ls
  shmctl ls --dir /var/lib/app/shm      # file segments in that directory too
  shmctl ls -o json`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			infos, err := segment.List(dirs...)
			if err != nil {
				return err
			}
			if output == "json" {
				out := make([]lsEntry, len(infos))
				for i, info := range infos {
					out[i] = lsEntry{segJSON: segView(info)}
					if info.Err != nil {
						out[i].Error = info.Err.Error()
					}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BACKEND\tNAME\tSIZE\tCREATOR\tALIVE\tCREATED\tWHERE\tSTATUS")
			for _, i := range infos {
				where := i.Path
				if i.Backend == segment.SysV {
					where = fmt.Sprintf("key %#08x id %d", uint32(i.SysVKey), i.SysVID)
				}
				status, created, creator := "ok", "-", "-"
				if i.Err != nil {
					status = i.Err.Error()
				} else {
					created = i.Created.Format(time.DateTime)
					creator = fmt.Sprint(i.CreatorPID)
				}
				fmt.Fprintf(w, "%v\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", i.Backend, i.Name, humanize.IBytes(uint64(i.Size)),
					creator, i.CreatorAlive, created, where, status)
			}
			return w.Flush()
		}),
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringArrayVar(&dirs, "dir", nil, "also list file segments in this directory (repeatable)")
	_ = cmd.MarkFlagDirname("dir")
	rootCmd.AddCommand(cmd)
}
