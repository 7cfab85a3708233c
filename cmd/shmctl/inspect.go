package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/allocator"
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
	// Allocator holds the per-class statistics of a SLAB region.
	Allocator []allocator.ClassStats `json:"allocator,omitempty"`
	// Error says why a region's contents could not be read.
	Error string `json:"error,omitempty"`
}

type inspectOut struct {
	segment.Info
	Mode    string          `json:"mode"` // octal text, "0600"
	Regions []inspectRegion `json:"regions"`
	// Holders are the processes that hold the segment now (as gc and rm
	// judge it); Liveness says so in words, or why it is unknown.
	Holders  []holder `json:"holders"`
	Liveness string   `json:"liveness"`
	// Channel decodes a shmkit channel (chanread.go); nil for other
	// segments.
	Channel *chanSnapshot `json:"channel,omitempty"`
}

func init() {
	var (
		bf     backendFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "inspect NAME [--backend posix|sysv|file] [-o json]",
		Short: "Show a segment's header and table of contents",
		Example: `  shmctl inspect demo
  shmctl inspect demo --backend sysv -o json
  shmctl inspect /var/lib/app/shm/orders --backend file`,
		Args:              oneArg,
		ValidArgsFunction: completeSegmentNames,
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
			out := inspectOut{Info: info, Mode: fmt.Sprintf("%04o", uint32(info.Mode.Perm())), Regions: make([]inspectRegion, len(info.Regions))}
			for i, r := range info.Regions {
				out.Regions[i] = inspectRegion{Name: r.Name, Kind: segment.FourCCString(r.Kind), KindValue: r.Kind,
					Offset: r.Offset, Length: r.Length, Align: r.Align}
			}
			readRegionStats(b, args[0], opts, out.Regions)
			out.Channel = inspectChannel(b, args[0], info)
			out.Holders = []holder{}
			if pt, err := scanProcs(); err != nil {
				out.Liveness = err.Error()
			} else {
				j := judge(pt, info)
				out.Liveness = j.Reason
				if j.Holders != nil {
					out.Holders = j.Holders
				}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if err := printInspect(cmd, out); err != nil {
				return err
			}
			return printChannel(cmd.OutOrStdout(), out.Channel)
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
	fmt.Fprintf(w, "mode:\t%s\n", o.Mode)
	fmt.Fprintf(w, "creator:\tpid %d, start tick %d, %s\n", o.CreatorPID, o.CreatorStart, alive)
	fmt.Fprintf(w, "created:\t%s\n", o.Created.Format(time.RFC3339Nano))
	fmt.Fprintf(w, "liveness:\t%s\n", o.Liveness)
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
	if err := w.Flush(); err != nil {
		return err
	}
	for _, r := range o.Regions {
		if r.Error != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "\nregion %s: %s\n", r.Name, r.Error)
			continue
		}
		if r.Allocator == nil {
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "\nallocator %s:\n", r.Name)
		w = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "CLASS\tTOTAL\tFREE\tCACHED\tIN USE\tIN FLIGHT\tHIGH WATER\tFAILED\t")
		for _, c := range r.Allocator {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", sizeString(int64(c.Size)), c.Total, c.Free, c.Cached,
				c.InUse, c.InFlight, c.HighWater, c.Failed)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// maxSnapshot bounds the bytes inspect copies out of one region.
const maxSnapshot = 1 << 30

// readRegionStats fills in what inspect can say about the contents of the
// regions it recognises (allocator statistics for SLAB regions). It attaches
// read-only and reads a snapshot, so it never disturbs the users of the
// segment. Failures are recorded per region, not fatal: the header is still
// worth showing.
func readRegionStats(b segment.Backend, name string, opts *segment.Options, regions []inspectRegion) {
	want := false
	for _, r := range regions {
		want = want || r.KindValue == allocator.KindSlab
	}
	if !want {
		return
	}
	ro := segment.Options{ReadOnly: true}
	if opts != nil {
		ro.SysVKey = opts.SysVKey
	}
	seg, err := segment.Open(b, name, &ro)
	if err != nil {
		for i := range regions {
			if regions[i].KindValue == allocator.KindSlab {
				regions[i].Error = err.Error()
			}
		}
		return
	}
	defer seg.Close()
	for i := range regions {
		r := &regions[i]
		if r.KindValue != allocator.KindSlab {
			continue
		}
		if r.Length <= 0 || r.Length > maxSnapshot {
			r.Error = fmt.Sprintf("region length %d: not snapshotted", r.Length)
			continue
		}
		// A 64-byte aligned private copy: the allocator checks alignment.
		buf := make([]byte, r.Length+64)
		pad := int((64 - uintptr(unsafe.Pointer(&buf[0]))%64) % 64)
		snap := buf[pad : pad+int(r.Length)]
		if _, err := seg.ReadAt(snap, r.Offset); err != nil {
			r.Error = err.Error()
			continue
		}
		st, err := allocator.ReadStats(snap)
		if err != nil {
			r.Error = err.Error()
			continue
		}
		r.Allocator = st
	}
}
