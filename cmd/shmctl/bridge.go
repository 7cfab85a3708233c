package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/bridge"
	"github.com/shmkit/shmkit/segment"
)

func init() {
	var (
		servers                []string
		subject, direction     string
		stream, durable, state string
		tlsCert, tlsKey, tlsCA string
		creds                  string
		create                 bool
		maxMessage, depth      int
		statsEvery, ackWait    time.Duration
		flushEvery, maxPending int
		batch                  int
		noFlow                 bool
	)
	cmd := &cobra.Command{
		Use:   "bridge CHANNEL [flags]",
		Short: "Extend a channel to other hosts over NATS (out, in or both)",
		Long: `bridge connects a local channel to a NATS subject (default shmkit.CHANNEL)
until interrupted. out: every message published on the channel here goes to
the subject. in: every message on the subject is published into the channel
here. both: the two, without loops. --jetstream makes delivery survive
restarts (a stream, and a durable consumer acked after the local publish).
Counters are printed to stderr every --stats-every and at the end, and
written into the channel every 100ms, where shmctl stat, watch, inspect and
metrics show them as the bridge participants' relay figures.

The defaults lose nothing on a healthy network: the out side packs the
messages already waiting into one NATS message (up to --batch, 64; give
--batch 1 when plain NATS subscribers read the subject), and over core NATS
the bridges give each other credit, so an out side never runs more than half
the in side's pending limits ahead (flow control; --no-flow-control turns it
off). Core NATS still loses, and every loss is counted (drops, missed, slow,
lost below; the relay drops of shmctl stat and metrics): what is published
while no in side is subscribed (before it starts, while it restarts, during a
partition), what a server or connection going down holds, and what exceeds
the pending limits of an in side that joins mid-burst or stops reporting.
JetStream (--jetstream) is the lossless mode: the server stores every message
and the in side acks it only after the local publish. docs/bridge.md has the
details.`,
		Example: `  shmctl bridge orders --server nats://nats.example:4222 --direction out
      # host A: what is published on "orders" here goes to the NATS server
  shmctl bridge orders --server nats://nats.example:4222 --direction in --create
      # host B: receive it into the channel "orders" here (created if missing)

  # at-least-once across restarts, over TLS with a credentials file
  shmctl bridge orders --server tls://nats.example:4222 --direction in \
      --jetstream ORDERS --durable host-b --state /var/lib/shmkit/orders.state \
      --tls-ca ca.pem --tls-cert host-b.pem --tls-key host-b-key.pem --creds host-b.creds`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			d, err := bridge.ParseDirection(direction)
			if err != nil {
				return err
			}
			name := args[0]
			if batch < 0 {
				return fmt.Errorf("invalid --batch %d (want 1 for off, or more)", batch)
			}
			ch, err := shmkit.Open(name)
			created := false
			if err != nil && create && d&bridge.In != 0 {
				ch, err = shmkit.Create(name, shmkit.Config{MaxMessage: maxMessage, RingDepth: depth, Keep: true})
				created = err == nil
				if errors.Is(err, segment.ErrExist) { // created meanwhile by another process
					ch, err = shmkit.Open(name)
				}
			}
			if err != nil {
				return fmt.Errorf("channel %s: %w", name, err)
			}
			// undo removes the channel this command created when it fails
			// before the bridge runs (unreachable server, bad TLS files):
			// --create leaves nothing behind on failure.
			undo := func(err error) error {
				ch.Close()
				if created {
					if rerr := shmkit.Remove(name); rerr != nil {
						return errors.Join(err, fmt.Errorf("remove the channel %s it created: %w", name, rerr))
					}
				}
				return err
			}
			src, sink, leave, err := bridge.JoinShmkit(ch, d)
			if err != nil {
				return undo(err)
			}
			b, err := bridge.New(bridge.Config{
				URLs: servers, Channel: name, Subject: subject, Direction: d,
				Stream: stream, Durable: durable, AckWait: ackWait, StateFile: state,
				TLSCert: tlsCert, TLSKey: tlsKey, TLSCA: tlsCA, Creds: creds,
				FlushEvery: flushEvery, MaxPending: maxPending, Batch: batch, NoFlowControl: noFlow,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}, src, sink)
			if err != nil {
				leave()
				return undo(err)
			}
			defer ch.Close()
			defer leave()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := b.Config()
			fmt.Fprintf(cmd.ErrOrStderr(), "bridge %s %v %s (origin %s)\n", name, d, cfg.Subject, b.Origin())
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			var tick <-chan time.Time
			if statsEvery > 0 {
				t := time.NewTicker(statsEvery)
				defer t.Stop()
				tick = t.C
			}
			for {
				select {
				case <-tick:
					printBridgeStats(cmd, b.Stats())
				case err := <-done:
					cerr := b.Close()
					printBridgeStats(cmd, b.Stats())
					return errors.Join(err, cerr)
				}
			}
		}),
	}
	f := cmd.Flags()
	f.StringSliceVarP(&servers, "server", "s", []string{"nats://127.0.0.1:4222"}, "NATS server URL(s), repeat or comma-separate for a cluster")
	f.StringVar(&subject, "subject", "", "NATS subject (default shmkit.CHANNEL)")
	f.StringVarP(&direction, "direction", "d", "out", "out (channel -> NATS), in (NATS -> channel) or both")
	f.StringVar(&stream, "jetstream", "", "JetStream stream (created on the subject if missing); empty: core NATS")
	f.StringVar(&durable, "durable", "", "JetStream durable consumer of the in side (default shmkit-CHANNEL)")
	f.DurationVar(&ackWait, "ack-wait", 0, "JetStream redelivery delay for unacked messages (default 5s)")
	f.StringVar(&state, "state", "", "in side: file keeping each origin publisher's last sequence, so loss while down is reported and redeliveries skipped")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS client certificate (PEM)")
	f.StringVar(&tlsKey, "tls-key", "", "TLS client key (PEM)")
	f.StringVar(&tlsCA, "tls-ca", "", "TLS root CA(s) to verify the server (PEM)")
	f.StringVar(&creds, "creds", "", "NATS credentials file (JWT and NKey seed)")
	f.BoolVar(&create, "create", false, "in/both: create the channel if it does not exist (kept after exit)")
	f.IntVar(&maxMessage, "max-message", 0, "with --create: largest message in bytes (default 4096)")
	f.IntVar(&depth, "ring-depth", 0, "with --create: ring depth, a power of two (default 256)")
	f.IntVar(&flushEvery, "flush-every", 0, "out side: confirm with a flush after this many messages (default 4096)")
	f.IntVar(&batch, "batch", bridge.DefaultBatch, "out side: pack up to this many waiting messages into one NATS message (a frame only shmkit bridges read; 1: off, for plain NATS subscribers)")
	f.BoolVar(&noFlow, "no-flow-control", false, "core NATS: do not pace the out side by the in sides' credit (an in side that falls behind its pending limits then loses messages)")
	f.IntVar(&maxPending, "max-pending", 0, "messages in flight / buffered per side (default 4096)")
	f.DurationVar(&statsEvery, "stats-every", 10*time.Second, "print counters to stderr this often (0: only at the end)")
	completeFixed(cmd, "direction", "out", "in", "both")
	_ = cmd.MarkFlagFilename("state")
	_ = cmd.MarkFlagFilename("tls-cert", "pem", "crt")
	_ = cmd.MarkFlagFilename("tls-key", "pem", "key")
	_ = cmd.MarkFlagFilename("tls-ca", "pem", "crt")
	_ = cmd.MarkFlagFilename("creds", "creds")
	rootCmd.AddCommand(cmd)
}

func printBridgeStats(cmd *cobra.Command, s bridge.Stats) {
	fmt.Fprintf(cmd.ErrOrStderr(),
		"out %d msgs %d B drops %d missed %d looped %d unflushed %d flow-waits %d (%v) | in %d msgs %d B drops %d slow %d lost %d dup %d pending %d | reconnects %d rtt %v errors %d\n",
		s.OutMsgs, s.OutBytes, s.OutDrops, s.OutMissed, s.OutLooped, s.OutUnflushed, s.OutFlowWaits, s.OutFlowWait.Round(time.Millisecond),
		s.InMsgs, s.InBytes, s.InDrops, s.InSlow, s.InLost, s.InDuplicates, s.InPending,
		s.Reconnects, s.FlushRTT, s.Errors)
}
