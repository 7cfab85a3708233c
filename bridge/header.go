package bridge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Header is the one NATS header every message the out side publishes
// carries. Its value is four fields separated by single spaces:
//
//	<channel> <origin> <publisher>.<epoch> <seq>   one channel message
//	<channel> <origin> batch <count>               a batch frame
//
// channel is the origin channel's name, origin the sending bridge's id
// (Bridge.Origin), publisher the local publisher's id and epoch (the epoch
// grows when a publisher's sequence goes backwards: a new publisher in a
// reused slot), seq that publisher's sequence number (1, 2, ...), count the
// channel messages in the frame. One header, not four: nats.go encodes and
// parses every header field of every message, and four cost a plain
// publisher/subscriber pair a third of its throughput against one tenth for
// one (BenchmarkHeaderCost).
const Header = "Shmkit"

// Meta is what a Shmkit header says.
type Meta struct {
	Channel string
	Origin  string
	// Publisher and Epoch identify the origin publisher, Seq is its
	// sequence number; all zero in a batch frame's Meta.
	Publisher int
	Epoch     uint64
	Seq       uint64
	// Batch is the number of channel messages in a batch frame; 0 for a
	// single message.
	Batch int
}

// ParseMeta decodes a Shmkit header value. The value comes from the
// network: anything but the four fields above is ErrCorrupt.
func ParseMeta(v string) (Meta, error) {
	var m Meta
	f, ok := fields4(v)
	if !ok {
		return Meta{}, fmt.Errorf("%w: %s header %q: want 4 fields", ErrCorrupt, Header, v)
	}
	m.Channel, m.Origin = f[0], f[1]
	if m.Channel == "" || m.Origin == "" {
		return Meta{}, fmt.Errorf("%w: %s header %q: empty field", ErrCorrupt, Header, v)
	}
	if f[2] == "batch" {
		n, err := strconv.ParseUint(f[3], 10, 31)
		if err != nil || n == 0 {
			return Meta{}, fmt.Errorf("%w: %s header %q: bad batch count", ErrCorrupt, Header, v)
		}
		m.Batch = int(n)
		return m, nil
	}
	id, epoch, ok := strings.Cut(f[2], ".")
	pub, err1 := strconv.ParseUint(id, 10, 31)
	ep, err2 := strconv.ParseUint(epoch, 10, 64)
	seq, err3 := strconv.ParseUint(f[3], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil || seq == 0 {
		return Meta{}, fmt.Errorf("%w: %s header %q: bad publisher or sequence", ErrCorrupt, Header, v)
	}
	m.Publisher, m.Epoch, m.Seq = int(pub), ep, seq
	return m, nil
}

// String is the header value for m.
func (m Meta) String() string { return string(m.appendTo(nil)) }

// appendTo appends the header value for m to b.
func (m Meta) appendTo(b []byte) []byte {
	b = append(append(append(b, m.Channel...), ' '), m.Origin...)
	if m.Batch > 0 {
		return strconv.AppendInt(append(b, " batch "...), int64(m.Batch), 10)
	}
	b = strconv.AppendInt(append(b, ' '), int64(m.Publisher), 10)
	b = strconv.AppendUint(append(b, '.'), m.Epoch, 10)
	return strconv.AppendUint(append(b, ' '), m.Seq, 10)
}

// fields4 splits v at single spaces into exactly four fields, without
// allocating.
func fields4(v string) ([4]string, bool) {
	var f [4]string
	for i := range 3 {
		a, rest, ok := strings.Cut(v, " ")
		if !ok {
			return f, false
		}
		f[i], v = a, rest
	}
	if strings.IndexByte(v, ' ') >= 0 {
		return f, false
	}
	f[3] = v
	return f, true
}

// metaOf returns msg's Shmkit header, decoded; ok is false for a message
// without a well-formed one (a plain NATS publisher's).
func metaOf(h nats.Header) (Meta, bool) {
	v := h[Header]
	if len(v) == 0 {
		return Meta{}, false
	}
	m, err := ParseMeta(v[0])
	return m, err == nil
}
