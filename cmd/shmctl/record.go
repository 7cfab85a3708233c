package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/spf13/cobra"
)

// recordFlags are the flags of `shmctl record`.
type recordFlags struct {
	bf       backendFlags
	tf       trustFlags
	file     string
	tap      bool
	count    int
	duration time.Duration
}

func init() {
	var f recordFlags
	cmd := &cobra.Command{
		Use:   "record NAME -o FILE [--tap] [--count N] [--duration D]",
		Short: "Record a channel's messages with publisher, sequence and time into a pcapng file (replay plays it back)",
		Long: `record joins channel NAME as a subscriber (a consumer on a work queue: it
then takes the messages it records) and writes every message it receives,
whole, to FILE: pcapng, link type USER0, each packet a 40-byte header
(publisher, epoch, sequence, length, flags, missed) and the payload, with
the receive time; the format of tap --pcapng, documented in docs/shmctl.md,
shown by Wireshark with contrib/wireshark/shmkit.lua. --tap records through
the channel's tap instead: no participant slot, no back-pressure, but only
the first TapSnap bytes of each message and losses when it falls behind. It
stops after --count messages, after --duration, or at Ctrl-C. FILE must not
exist (it is created with mode 0600).`,
		Example: `  shmctl record orders -o orders.pcapng --count 10000
  shmctl record orders -o orders.pcapng --duration 1m --tap
  shmctl replay orders.pcapng orders-test`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd.OutOrStdout(), args[0], &f)
		}),
	}
	f.bf.add(cmd)
	f.tf.add(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "output", "o", "", "the pcapng file to write (required; created, an existing file is refused)")
	fl.BoolVar(&f.tap, "tap", false, "record through the channel's tap: no slot, no back-pressure, first TapSnap bytes only")
	fl.IntVarP(&f.count, "count", "n", 0, "stop after this many messages (0: no limit)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: no limit)")
	_ = cmd.MarkFlagFilename("output", "pcapng")
	rootCmd.AddCommand(cmd)
}

func runRecord(w io.Writer, name string, f *recordFlags) error {
	if f.file == "" {
		return fmt.Errorf("-o FILE is required (the pcapng file to write)")
	}
	if err := checkCount(f.count); err != nil {
		return err
	}
	if f.duration < 0 {
		return fmt.Errorf("invalid --duration %v", f.duration)
	}
	ctx, stop := interruptible()
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	// next returns the next message and when it was seen.
	var next func() (time.Time, pcapMsg, func() error, error)
	var snap int
	if f.tap {
		b, err := channelBackend(&f.bf)
		if err != nil {
			return err
		}
		tp, err := shmkit.OpenTap(name, append(f.tf.options(), shmkit.WithBackend(b))...)
		switch {
		case errors.Is(err, shmkit.ErrNotExist):
			return fmt.Errorf("channel %s does not exist: %w", name, err)
		case err != nil:
			return notChannel(name, err)
		}
		defer tp.Close()
		snap = tp.Config().TapSnap
		next = func() (time.Time, pcapMsg, func() error, error) {
			r, err := tp.Receive(ctx)
			if err != nil {
				return time.Time{}, pcapMsg{}, nil, err
			}
			return r.Time, pcapMsg{Flags: msgFlagTap, Publisher: uint32(r.Publisher), Len: uint32(r.Len), Seq: r.Seq,
				Missed: r.Missed, Data: r.Data}, func() error { return nil }, nil
		}
	} else {
		ch, err := joinChannel(&f.bf, &f.tf, name)
		if err != nil {
			return err
		}
		defer ch.Close()
		s, err := receiver(ch)
		if err != nil {
			return err
		}
		defer s.Close()
		snap = ch.Config().MaxMessage
		role := shmkit.RolePublisher
		if ch.Config().Pattern == shmkit.WorkQueue {
			role = shmkit.RoleProducer
		}
		next = func() (time.Time, pcapMsg, func() error, error) {
			for {
				m, err := s.Receive(ctx)
				if errors.Is(err, shmkit.ErrPeerGone) {
					if err = ch.WaitFor(ctx, role, 1); err == nil {
						continue // a publisher came back
					}
				}
				if err != nil {
					return time.Time{}, pcapMsg{}, nil, err
				}
				d := m.Bytes()
				return time.Now(), pcapMsg{Publisher: uint32(m.Publisher()), Len: uint32(len(d)), Seq: m.Seq(),
					Missed: m.Missed(), Data: d}, m.Release, nil
			}
		}
	}
	pf, err := createPcap(f.file, name, snap)
	if err != nil {
		return fmt.Errorf("-o %s: %w", f.file, err)
	}
	n, lost := 0, uint64(0)
	var runErr error
	for f.count == 0 || n < f.count {
		ts, m, release, err := next()
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
		err = pf.write(ts, m)
		lost += m.Missed
		if rerr := release(); err == nil {
			err = rerr
		}
		if err != nil {
			runErr = fmt.Errorf("-o %s: %w", f.file, err)
			break
		}
		n++
	}
	if err := pf.close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("-o %s: %w", f.file, err)
	}
	if runErr != nil {
		return fmt.Errorf("after %d messages: %w", n, runErr)
	}
	_, err = fmt.Fprintf(w, "recorded %d message(s) of %s to %s (%d missed)\n", n, name, f.file, lost)
	return err
}

// replayFlags are the flags of `shmctl replay`.
type replayFlags struct {
	bf      backendFlags
	tf      trustFlags
	speed   float64
	max     bool
	waitFor int
}

func init() {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay FILE NAME [--speed X | --max] [--wait-subscribers N]",
		Short: "Publish a recording (shmctl record, tap --pcapng) into a channel with its original timing",
		Long: `replay reads FILE, a pcapng recording made by shmctl record (or tap
--pcapng, if every message was captured whole), and publishes its messages
into channel NAME in their order, with their original spacing in time
(--speed 2: twice as fast; --max: as fast as the channel takes them). Each
original publisher gets a publisher of its own, so each message keeps its
sequence number when the recording started at a publisher's first message.
Before publishing anything it checks the whole file: every packet must be a
message, none truncated, none longer than the channel's MaxMessage.`,
		Example: `  shmctl replay orders.pcapng orders-test
  shmctl replay orders.pcapng orders-test --speed 10
  shmctl replay orders.pcapng orders-test --max --wait-subscribers 1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("usage: shmctl %s", cmd.Use)
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []string{"pcapng"}, cobra.ShellCompDirectiveFilterFileExt
			}
			return completeChannelNames(cmd, args[1:], prefix)
		},
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd.OutOrStdout(), args[0], args[1], &f)
		}),
	}
	f.bf.add(cmd)
	f.tf.add(cmd)
	cmd.Flags().Float64Var(&f.speed, "speed", 1, "play this many times faster than recorded")
	cmd.Flags().BoolVar(&f.max, "max", false, "publish as fast as the channel takes the messages, ignoring the timing")
	cmd.Flags().IntVar(&f.waitFor, "wait-subscribers", 0, "first wait until this many subscribers (consumers) have joined")
	rootCmd.AddCommand(cmd)
}

func runReplay(w io.Writer, file, name string, f *replayFlags) error {
	if f.speed <= 0 {
		return fmt.Errorf("invalid --speed %v (want more than 0)", f.speed)
	}
	if f.waitFor < 0 {
		return fmt.Errorf("invalid --wait-subscribers %d", f.waitFor)
	}
	msgs, err := readPcap(file)
	if err != nil {
		return err
	}
	ch, err := joinChannel(&f.bf, &f.tf, name)
	if err != nil {
		return err
	}
	defer ch.Close()
	max := ch.Config().MaxMessage
	type pubKey struct{ pub, epoch uint32 }
	var keys []pubKey
	seen := map[pubKey]bool{}
	for i, m := range msgs {
		switch {
		case uint64(len(m.Data)) < uint64(m.Len):
			return fmt.Errorf("%s: message %d was captured truncated (%d of %d bytes; a tap keeps only TapSnap bytes): it cannot be replayed",
				file, i+1, len(m.Data), m.Len)
		case int(m.Len) > max:
			return fmt.Errorf("%s: message %d has %d bytes, channel %s takes up to %d: %w", file, i+1, m.Len, name, max, shmkit.ErrTooLarge)
		}
		k := pubKey{m.Publisher, m.Epoch}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) > ch.Config().MaxPublishers {
		return fmt.Errorf("%s holds %d publishers' messages; channel %s takes %d publishers", file, len(keys), name, ch.Config().MaxPublishers)
	}
	pubs := map[pubKey]*shmkit.Publisher{}
	for _, k := range keys {
		p, err := sender(ch)
		if err != nil {
			return fmt.Errorf("a publisher for each of the %d in the recording: %w", len(keys), err)
		}
		defer p.Close()
		pubs[k] = p
	}
	ctx, stop := interruptible()
	defer stop()
	if f.waitFor > 0 {
		role := shmkit.RoleSubscriber
		if ch.Config().Pattern == shmkit.WorkQueue {
			role = shmkit.RoleConsumer
		}
		if err := ch.WaitFor(ctx, role, f.waitFor); err != nil {
			return fmt.Errorf("waiting for %d %ss: %w", f.waitFor, role, err)
		}
	}
	start := time.Now()
	var bytes int64
	for i, m := range msgs {
		if !f.max && i > 0 {
			due := start.Add(time.Duration(float64(m.Time.Sub(msgs[0].Time)) / f.speed))
			if d := time.Until(due); d > 200*time.Microsecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return fmt.Errorf("after %d of %d messages: %w", i, len(msgs), ctx.Err())
				}
			}
		}
		if err := pubs[pubKey{m.Publisher, m.Epoch}].Send(ctx, m.Data); err != nil {
			return fmt.Errorf("after %d of %d messages: %w", i, len(msgs), err)
		}
		bytes += int64(len(m.Data))
	}
	_, err = fmt.Fprintf(w, "replayed %d message(s), %d bytes, from %d publisher(s) into %s in %v\n",
		len(msgs), bytes, len(keys), name, time.Since(start).Round(time.Millisecond))
	return err
}
