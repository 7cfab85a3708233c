package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/spf13/cobra"
)

// tapMessage is one message in `shmctl tap -o json`: one object per line.
type tapMessage struct {
	Time      time.Time `json:"time"`
	Publisher int       `json:"publisher"`      // participant slot | generation<<8
	Slot      int       `json:"publisher_slot"` // participant slot
	Seq       uint64    `json:"seq"`
	Len       int       `json:"len"`
	Captured  int       `json:"captured"`
	Missed    uint64    `json:"missed,omitempty"` // lost just before this one
	Encoding  string    `json:"encoding"`         // of data: base64, or hex with --hex
	Data      string    `json:"data"`
}

// tapOptions are the flags of `shmctl tap`.
type tapOptions struct {
	bf     backendFlags
	output string
	count  int
	hex    bool
	pcapng string
}

func init() {
	var o tapOptions
	cmd := &cobra.Command{
		Use:   "tap NAME [-n COUNT] [--hex] [-o json] [--pcapng FILE] [--backend posix|sysv|file]",
		Short: "Watch a channel's messages as they pass, read-only (the publishers copy the first bytes for the tap)",
		Long: `tap attaches to a channel as a tap: while it is attached, every publisher also
copies the first TapSnap bytes (default 256) of each message it publishes
into the channel's tap ring, which tap reads. A tap takes no participant
slot, holds no message and never slows a subscriber; when it falls more than
TapSlots messages behind (default 256) it loses the oldest and says how many.
Text output shows printable bytes and a dot for the others (--hex: hex
digits); -o json prints one object per message; --pcapng also writes the
messages to a pcapng file, the format of shmctl record (link type USER0; each
packet a 40-byte header with publisher, epoch, sequence, length, flags and
missed count, then the captured bytes; contrib/wireshark/shmkit.lua shows
the fields in Wireshark). It stops after -n messages, or at Ctrl-C.`,
		Example: `  shmctl tap orders
  shmctl tap orders -n 100 --hex
  shmctl tap orders -n 1000 -o json | jq .len
  shmctl tap orders --pcapng orders.pcapng -n 10000`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			return runTap(cmd.OutOrStdout(), args[0], &o)
		}),
	}
	o.bf.add(cmd)
	addOutputFlag(cmd, &o.output)
	cmd.Flags().IntVarP(&o.count, "count", "n", 0, "stop after this many messages (0: until interrupted)")
	cmd.Flags().BoolVar(&o.hex, "hex", false, "show the captured bytes as hex digits (text), or encode them as hex (json: instead of base64)")
	cmd.Flags().StringVar(&o.pcapng, "pcapng", "", "also write the messages to this pcapng file (created, mode 0600; an existing file is refused)")
	_ = cmd.MarkFlagFilename("pcapng", "pcapng")
	rootCmd.AddCommand(cmd)
}

func runTap(out io.Writer, name string, o *tapOptions) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if err := checkCount(o.count); err != nil {
		return err
	}
	b, err := channelBackend(&o.bf)
	if err != nil {
		return err
	}
	tap, err := shmkit.OpenTap(name, shmkit.WithBackend(b))
	switch {
	case errors.Is(err, shmkit.ErrBadMagic):
		return notChannel(name, err)
	case errors.Is(err, shmkit.ErrNoTap):
		return fmt.Errorf("channel %s has no tap ring (created by a shmkit from before taps, or with TapSlots < 0): %w", name, err)
	case err != nil:
		return err
	}
	defer tap.Close()
	var pw *pcapFile
	if o.pcapng != "" {
		if pw, err = createPcap(o.pcapng, name, tap.Config().TapSnap); err != nil {
			return fmt.Errorf("--pcapng: %w", err)
		}
		defer func() {
			if pw != nil {
				pw.close()
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(out)
	for n := 0; o.count == 0 || n < o.count; n++ {
		r, err := tap.Receive(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return err
		}
		if pw != nil {
			m := pcapMsg{Flags: msgFlagTap, Publisher: uint32(r.Publisher), Len: uint32(r.Len), Seq: r.Seq, Missed: r.Missed, Data: r.Data}
			if err := pw.write(r.Time, m); err != nil {
				return fmt.Errorf("--pcapng: %w", err)
			}
		}
		if o.output == "json" {
			m := tapMessage{Time: r.Time, Publisher: r.Publisher, Slot: r.Publisher & 0xff, Seq: r.Seq, Len: r.Len,
				Captured: len(r.Data), Missed: r.Missed, Encoding: "base64"}
			if o.hex {
				m.Encoding, m.Data = "hex", hex.EncodeToString(r.Data)
			} else {
				m.Data = base64.StdEncoding.EncodeToString(r.Data)
			}
			if err := enc.Encode(m); err != nil {
				return err
			}
			continue
		}
		if r.Missed > 0 {
			fmt.Fprintf(out, "... %d missed\n", r.Missed)
		}
		data := printable(r.Data)
		if o.hex {
			data = hex.EncodeToString(r.Data)
		}
		more := ""
		if len(r.Data) < r.Len {
			more = "…"
		}
		if _, err := fmt.Fprintf(out, "%s pub %d.%d seq %d len %d: %s%s\n", r.Time.Format("15:04:05.000000"),
			r.Publisher&0xff, r.Publisher>>8, r.Seq, r.Len, data, more); err != nil {
			return err
		}
	}
	if pw != nil {
		if err := pw.close(); err != nil {
			return fmt.Errorf("--pcapng: %w", err)
		}
		pw = nil
	}
	if o.output != "json" {
		st := tap.Stats()
		fmt.Fprintf(out, "tap: %d received, %d missed (ring of %d slots, %d bytes captured each)\n",
			st.Received, st.Missed, st.Slots, st.Snap)
	}
	return nil
}

// printable shows printable ASCII as is and every other byte as a dot.
func printable(b []byte) string {
	s := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		s[i] = c
	}
	return string(s)
}
