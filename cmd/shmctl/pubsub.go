package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/spf13/cobra"
)

// trustFlags name the owners and groups a joiner accepts besides its own
// (shmkit.WithOwner, shmkit.WithGroup; docs/security.md).
type trustFlags struct {
	owners []string
	group  string
}

func (t *trustFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&t.owners, "owner", nil, "accept a channel owned by this user (name or uid) besides this one's own (repeatable)")
	cmd.Flags().StringVar(&t.group, "group", "", "accept a channel that members of this group may write (name or gid)")
}

func (t *trustFlags) options() []shmkit.Option {
	var o []shmkit.Option
	for _, u := range t.owners {
		o = append(o, shmkit.WithOwner(u))
	}
	if t.group != "" {
		o = append(o, shmkit.WithGroup(t.group))
	}
	return o
}

// joinChannel opens channel name for pub, sub, record and replay, with one
// clear error for an unknown name or a segment that is no channel.
func joinChannel(bf *backendFlags, tf *trustFlags, name string) (*shmkit.Channel, error) {
	b, err := channelBackend(bf)
	if err != nil {
		return nil, err
	}
	ch, err := shmkit.Open(name, append(tf.options(), shmkit.WithBackend(b))...)
	switch {
	case errors.Is(err, shmkit.ErrNotExist):
		return nil, fmt.Errorf("channel %s does not exist (shmctl create --channel %s makes one): %w", name, name, err)
	case err != nil:
		return nil, notChannel(name, err)
	}
	return ch, nil
}

// sender joins ch as a publisher (a producer on a work queue).
func sender(ch *shmkit.Channel) (*shmkit.Publisher, error) {
	if ch.Config().Pattern == shmkit.WorkQueue {
		p, err := ch.Producer()
		if err != nil {
			return nil, err
		}
		return p.Publisher, nil
	}
	return ch.Publisher()
}

// receiver joins ch as a subscriber (a consumer on a work queue).
func receiver(ch *shmkit.Channel) (*shmkit.Subscriber, error) {
	if ch.Config().Pattern == shmkit.WorkQueue {
		c, err := ch.Consumer()
		if err != nil {
			return nil, err
		}
		return c.Subscriber, nil
	}
	return ch.Subscriber()
}

// interruptible returns a context that ends at Ctrl-C or SIGTERM.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// pubFlags are the flags of `shmctl pub`.
type pubFlags struct {
	bf      backendFlags
	tf      trustFlags
	file    string
	count   int
	size    string
	rate    float64
	waitFor int
	timeout time.Duration
	output  string
}

// pubOut is `shmctl pub -o json`.
type pubOut struct {
	Channel   string `json:"channel"`
	Publisher int    `json:"publisher"`
	Published int    `json:"published"`
	Bytes     int64  `json:"bytes"`
}

func init() {
	var f pubFlags
	cmd := &cobra.Command{
		Use:   "pub NAME [MESSAGE...] [--file F | --count N --size S --rate R] [--wait-subscribers N]",
		Short: "Publish messages into a channel: the arguments, each line of stdin, a file, or generated traffic",
		Long: `pub joins channel NAME as a publisher (a producer on a work queue) and
publishes each MESSAGE argument as one message; with none, each line of
standard input (without its newline); --file F publishes the file as one
message; --count N --size S generates N messages of S bytes, each starting
with its number (1, 2, ... as 8 bytes little endian) for load tests, at --rate
R messages per second (0: as fast as the channel takes them). With policy
block, a full subscriber ring makes pub wait, like any publisher. It leaves
the channel as it found it. --wait-subscribers N first waits until N
subscribers (consumers) have joined, so nothing is published to nobody.`,
		Example: `  shmctl pub orders hello world             # two messages
  seq 10 | shmctl pub orders                 # ten messages, one per line
  shmctl pub orders --file order.json
  shmctl pub orders --count 100000 --size 256 --rate 50000 --wait-subscribers 1`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			return runPub(cmd.InOrStdin(), cmd.OutOrStdout(), args[0], args[1:], &f)
		}),
	}
	f.bf.add(cmd)
	f.tf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "publish this file as one message")
	fl.IntVar(&f.count, "count", 0, "generate this many messages (with --size)")
	fl.StringVar(&f.size, "size", "64", "size of each generated message (e.g. 64, 4KiB; at least 8)")
	fl.Float64Var(&f.rate, "rate", 0, "generated messages per second (0: as fast as the channel takes them)")
	fl.IntVar(&f.waitFor, "wait-subscribers", 0, "first wait until this many subscribers (consumers) have joined")
	fl.DurationVar(&f.timeout, "timeout", 0, "give up after this long (0: no limit)")
	addOutputFlag(cmd, &f.output)
	_ = cmd.MarkFlagFilename("file")
	rootCmd.AddCommand(cmd)
}

func runPub(stdin io.Reader, w io.Writer, name string, msgs []string, f *pubFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{len(msgs) > 0, f.file != "", f.count > 0} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return fmt.Errorf("give messages as arguments, --file or --count, not several")
	}
	if f.count < 0 || f.rate < 0 || f.waitFor < 0 || f.timeout < 0 {
		return fmt.Errorf("--count, --rate, --wait-subscribers and --timeout must not be negative")
	}
	size := 0
	if f.count > 0 {
		n, err := parseSize(f.size)
		if err != nil {
			return fmt.Errorf("invalid --size: %w", err)
		}
		if n < 8 {
			return fmt.Errorf("invalid --size %d: a generated message holds an 8-byte number, so at least 8", n)
		}
		size = int(n)
	}
	var file []byte
	if f.file != "" {
		var err error
		if file, err = os.ReadFile(f.file); err != nil {
			return fmt.Errorf("--file: %w", err)
		}
	}
	ch, err := joinChannel(&f.bf, &f.tf, name)
	if err != nil {
		return err
	}
	defer ch.Close()
	max := ch.Config().MaxMessage
	switch {
	case file != nil && len(file) > max:
		return fmt.Errorf("--file %s: %d bytes, channel %s takes messages up to %d: %w", f.file, len(file), name, max, shmkit.ErrTooLarge)
	case size > max:
		return fmt.Errorf("--size %d: channel %s takes messages up to %d bytes: %w", size, name, max, shmkit.ErrTooLarge)
	}
	for i, m := range msgs {
		if len(m) > max {
			return fmt.Errorf("message %d: %d bytes, channel %s takes messages up to %d: %w", i+1, len(m), name, max, shmkit.ErrTooLarge)
		}
	}
	p, err := sender(ch)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, stop := interruptible()
	defer stop()
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	if f.waitFor > 0 {
		role := shmkit.RoleSubscriber
		if ch.Config().Pattern == shmkit.WorkQueue {
			role = shmkit.RoleConsumer
		}
		if err := ch.WaitFor(ctx, role, f.waitFor); err != nil {
			return fmt.Errorf("waiting for %d %ss: %w", f.waitFor, role, err)
		}
	}
	out := pubOut{Channel: name, Publisher: p.ID()}
	send := func(b []byte) error {
		if err := p.Send(ctx, b); err != nil {
			return fmt.Errorf("after %d messages: %w", out.Published, err)
		}
		out.Published++
		out.Bytes += int64(len(b))
		return nil
	}
	switch {
	case len(msgs) > 0:
		for _, m := range msgs {
			if err := send([]byte(m)); err != nil {
				return err
			}
		}
	case file != nil:
		if err := send(file); err != nil {
			return err
		}
	case f.count > 0:
		buf := make([]byte, size)
		for i := range buf[8:] {
			buf[8+i] = byte('a' + i%26)
		}
		start := time.Now()
		for i := 1; i <= f.count; i++ {
			if f.rate > 0 {
				due := start.Add(time.Duration(float64(i-1) / f.rate * float64(time.Second)))
				if d := time.Until(due); d > time.Millisecond {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return fmt.Errorf("after %d messages: %w", out.Published, ctx.Err())
					}
				}
			}
			binary.LittleEndian.PutUint64(buf, uint64(i))
			if err := send(buf); err != nil {
				return err
			}
		}
	default:
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), max+1)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) > max {
				return fmt.Errorf("line %d: %d bytes, channel %s takes messages up to %d: %w", out.Published+1, len(line), name, max, shmkit.ErrTooLarge)
			}
			if err := send(line); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return fmt.Errorf("line %d: longer than the channel's %d-byte messages: %w", out.Published+1, max, shmkit.ErrTooLarge)
			}
			return fmt.Errorf("stdin: %w", err)
		}
	}
	if f.output == "json" {
		return json.NewEncoder(w).Encode(out)
	}
	_, err = fmt.Fprintf(w, "published %d message(s), %d bytes, to %s\n", out.Published, out.Bytes, name)
	return err
}

// subFlags are the flags of `shmctl sub`.
type subFlags struct {
	bf      backendFlags
	tf      trustFlags
	output  string
	hex     bool
	count   int
	timeout time.Duration
}

// subMessage is one message in `shmctl sub -o json`: one object per line.
type subMessage struct {
	Time      time.Time `json:"time"`
	Publisher int       `json:"publisher"`
	Seq       uint64    `json:"seq"`
	Len       int       `json:"len"`
	Missed    uint64    `json:"missed,omitempty"`
	Encoding  string    `json:"encoding"`
	Data      string    `json:"data"`
}

func init() {
	var f subFlags
	cmd := &cobra.Command{
		Use:   "sub NAME [--count N] [--timeout D] [--hex] [-o json]",
		Short: "Receive a channel's messages as a real subscriber (a consumer on a work queue) and print them",
		Long: `sub joins channel NAME as a subscriber: unlike tap, it takes a participant
slot, receives every message whole and exerts back-pressure (with policy
block a publisher waits for it); on a work queue it is a consumer and takes
the messages it prints away from the other consumers. Each message is
printed as escaped text (--hex: hex digits), or with -o json as one object
per line (publisher, seq, len, missed, payload in base64, receive time). It
stops after --count messages (exit 0), at --timeout (exit 1 if --count was
not reached), or at Ctrl-C; a publisher leaving does not end it.`,
		Example: `  shmctl sub orders
  shmctl sub orders --count 10 --timeout 5s -o json | jq .seq
  shmctl sub jobs --count 1                  # take one job from a work queue`,
		Args:              oneArg,
		ValidArgsFunction: completeChannelNames,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			return runSub(cmd.OutOrStdout(), args[0], &f)
		}),
	}
	f.bf.add(cmd)
	f.tf.add(cmd)
	addOutputFlag(cmd, &f.output)
	cmd.Flags().BoolVar(&f.hex, "hex", false, "print payloads as hex digits (json: encode them as hex instead of base64)")
	cmd.Flags().IntVarP(&f.count, "count", "n", 0, "stop after this many messages (0: until interrupted)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "stop after this long (0: no limit); with --count, not reaching it is an error")
	rootCmd.AddCommand(cmd)
}

func runSub(w io.Writer, name string, f *subFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if err := checkCount(f.count); err != nil {
		return err
	}
	if f.timeout < 0 {
		return fmt.Errorf("invalid --timeout %v", f.timeout)
	}
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
	ctx, stop := interruptible()
	defer stop()
	timedOut := func() bool { return false }
	if f.timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		ctx = tctx
		timedOut = func() bool { return errors.Is(tctx.Err(), context.DeadlineExceeded) }
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	n := 0
	for f.count == 0 || n < f.count {
		m, err := s.Receive(ctx)
		if errors.Is(err, shmkit.ErrPeerGone) {
			// Every publisher left: wait for the next one instead.
			role := shmkit.RolePublisher
			if ch.Config().Pattern == shmkit.WorkQueue {
				role = shmkit.RoleProducer
			}
			bw.Flush()
			if err = ch.WaitFor(ctx, role, 1); err == nil {
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				if f.count > 0 && timedOut() {
					bw.Flush()
					return fmt.Errorf("timed out after %v with %d of %d messages", f.timeout, n, f.count)
				}
				return nil
			}
			return err
		}
		data := m.Bytes()
		if f.output == "json" {
			o := subMessage{Time: time.Now(), Publisher: m.Publisher(), Seq: m.Seq(), Len: len(data), Missed: m.Missed(), Encoding: "base64"}
			if f.hex {
				o.Encoding, o.Data = "hex", hex.EncodeToString(data)
			} else {
				o.Data = base64.StdEncoding.EncodeToString(data)
			}
			err = enc.Encode(o)
		} else {
			if mi := m.Missed(); mi > 0 {
				fmt.Fprintf(bw, "... %d missed\n", mi)
			}
			text := escape(data)
			if f.hex {
				text = hex.EncodeToString(data)
			}
			_, err = fmt.Fprintf(bw, "pub %d.%d seq %d len %d: %s\n", m.Publisher()&0xff, m.Publisher()>>8, m.Seq(), len(data), text)
		}
		if rerr := m.Release(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		n++
		if f.count == 0 {
			bw.Flush() // show each message as it comes
		}
	}
	return nil
}

// escape shows a payload as a Go string literal's body: printable text as
// is, everything else escaped, so one message is one line.
func escape(b []byte) string {
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}
