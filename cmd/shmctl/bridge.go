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
metrics show them as the bridge participants' relay figures.`,
		Example: `  shmctl bridge orders --server nats://nats.example:4222 --direction out
      # host A: what is published on "orders" here goes to the NATS server
  shmctl bridge orders --server nats://nats.example:4222 --direction in --create
      # host B: receive it into the channel "orders" here (created if missing)

  # at-least-once across restarts, over TLS with a credentials file
  shmctl bridge orders --server tls://nats.example:4222 --direction in \
      --jetstream ORDERS --durable host-b --state /var/lib/shmkit/orders.state \
      --tls-ca ca.pem --tls-cert host-b.pem --tls-key host-b-key.pem --creds host-b.creds`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := bridge.ParseDirection(direction)
			if err != nil {
				return err
			}
			name := args[0]
			ch, err := shmkit.Open(name)
			if err != nil && create && d&bridge.In != 0 {
				ch, err = shmkit.Create(name, shmkit.Config{MaxMessage: maxMessage, RingDepth: depth, Keep: true})
				if errors.Is(err, segment.ErrExist) { // created meanwhile by another process
					ch, err = shmkit.Open(name)
				}
			}
			if err != nil {
				return fmt.Errorf("channel %s: %w", name, err)
			}
			defer ch.Close()
			src, sink, leave, err := bridge.JoinShmkit(ch, d)
			if err != nil {
				return err
			}
			defer leave()
			b, err := bridge.New(bridge.Config{
				URLs: servers, Channel: name, Subject: subject, Direction: d,
				Stream: stream, Durable: durable, AckWait: ackWait, StateFile: state,
				TLSCert: tlsCert, TLSKey: tlsKey, TLSCA: tlsCA, Creds: creds,
				FlushEvery: flushEvery, MaxPending: maxPending, Batch: batch,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}, src, sink)
			if err != nil {
				return err
			}
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
		},
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
	f.IntVar(&batch, "batch", 1, "out side: pack up to this many waiting messages into one NATS message (a frame only shmkit bridges read; 1: off)")
	f.IntVar(&maxPending, "max-pending", 0, "messages in flight / buffered per side (default 4096)")
	f.DurationVar(&statsEvery, "stats-every", 10*time.Second, "print counters to stderr this often (0: only at the end)")
	rootCmd.AddCommand(cmd)
}

func printBridgeStats(cmd *cobra.Command, s bridge.Stats) {
	fmt.Fprintf(cmd.ErrOrStderr(),
		"out %d msgs %d B drops %d missed %d looped %d unflushed %d | in %d msgs %d B drops %d slow %d lost %d dup %d pending %d | reconnects %d rtt %v errors %d\n",
		s.OutMsgs, s.OutBytes, s.OutDrops, s.OutMissed, s.OutLooped, s.OutUnflushed,
		s.InMsgs, s.InBytes, s.InDrops, s.InSlow, s.InLost, s.InDuplicates, s.InPending,
		s.Reconnects, s.FlushRTT, s.Errors)
}
