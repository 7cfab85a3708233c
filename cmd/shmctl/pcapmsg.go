package main

// The message header of shmctl's pcapng files (record, tap --pcapng,
// replay). Each packet is one channel message: this header, then the
// message's captured bytes. Link type LINKTYPE_USER0 (147);
// contrib/wireshark/shmkit.lua dissects it. docs/shmctl.md documents it.
//
//	offset size field
//	0      4    magic "SHMK"
//	4      2    header length in bytes (40; a reader skips what it does not know)
//	6      2    version (1)
//	8      4    flags (msgFlag*)
//	12     4    publisher: participant slot | generation<<8 (Sample.Publisher)
//	16     4    epoch: grows when a publisher's sequence goes backwards
//	20     4    message length (the original, whole message)
//	24     8    sequence number (the publisher's, 1, 2, ...)
//	32     8    missed: messages lost just before this one
//	40     ...  payload (captured bytes: all of it, or the first TapSnap for a tap)
//
// All integers little endian. The packet's caplen is 40 + captured bytes,
// its origlen 40 + message length; its timestamp is when shmctl received
// the message (record) or read the tap's copy (tap).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// linkTypeUser0 is LINKTYPE_USER0 (147), the pcapng link type for a
// private protocol.
const linkTypeUser0 = layers.LinkType(147)

const (
	msgMagic     = "SHMK"
	msgHeaderLen = 40
	msgVersion   = 1
	maxMsgHdrLen = 1024
	msgFlagTap   = 1 << 0 // captured by a tap (no participant slot; may be truncated)
	msgFlagTrunc = 1 << 1 // the payload holds fewer bytes than the message's length
)

// errPcapMsg: a packet that is not a well-formed shmctl message.
var errPcapMsg = errors.New("not a shmctl message packet")

// pcapMsg is one message of a recording.
type pcapMsg struct {
	Flags     uint32
	Publisher uint32
	Epoch     uint32
	Len       uint32 // the whole message's length
	Seq       uint64
	Missed    uint64
	Data      []byte // captured payload; aliases the packet
}

// appendPcapMsg appends m's header and payload to b.
func appendPcapMsg(b []byte, m pcapMsg) []byte {
	b = append(b, msgMagic...)
	b = binary.LittleEndian.AppendUint16(b, msgHeaderLen)
	b = binary.LittleEndian.AppendUint16(b, msgVersion)
	b = binary.LittleEndian.AppendUint32(b, m.Flags)
	b = binary.LittleEndian.AppendUint32(b, m.Publisher)
	b = binary.LittleEndian.AppendUint32(b, m.Epoch)
	b = binary.LittleEndian.AppendUint32(b, m.Len)
	b = binary.LittleEndian.AppendUint64(b, m.Seq)
	b = binary.LittleEndian.AppendUint64(b, m.Missed)
	return append(b, m.Data...)
}

// parsePcapMsg decodes one packet. The file is untrusted input: every
// length is checked against the packet.
func parsePcapMsg(p []byte) (pcapMsg, error) {
	if len(p) < msgHeaderLen || string(p[:4]) != msgMagic {
		return pcapMsg{}, fmt.Errorf("%w: no %q header", errPcapMsg, msgMagic)
	}
	hl := int(binary.LittleEndian.Uint16(p[4:]))
	if v := binary.LittleEndian.Uint16(p[6:]); v != msgVersion {
		return pcapMsg{}, fmt.Errorf("%w: header version %d (this shmctl reads %d)", errPcapMsg, v, msgVersion)
	}
	if hl < msgHeaderLen || hl > maxMsgHdrLen || hl > len(p) {
		return pcapMsg{}, fmt.Errorf("%w: header length %d in a packet of %d bytes", errPcapMsg, hl, len(p))
	}
	m := pcapMsg{
		Flags:     binary.LittleEndian.Uint32(p[8:]),
		Publisher: binary.LittleEndian.Uint32(p[12:]),
		Epoch:     binary.LittleEndian.Uint32(p[16:]),
		Len:       binary.LittleEndian.Uint32(p[20:]),
		Seq:       binary.LittleEndian.Uint64(p[24:]),
		Missed:    binary.LittleEndian.Uint64(p[32:]),
		Data:      p[hl:],
	}
	if uint64(len(m.Data)) > uint64(m.Len) {
		return pcapMsg{}, fmt.Errorf("%w: %d payload bytes for a message of %d", errPcapMsg, len(m.Data), m.Len)
	}
	return m, nil
}

// epochs gives each publisher id an epoch that grows when its sequence
// goes backwards (a new publisher in a reused slot and generation), as the
// NATS bridge does.
type epochs map[int]*struct {
	last  uint64
	epoch uint32
}

func (e epochs) of(pub int, seq uint64) uint32 {
	t := e[pub]
	if t == nil {
		t = &struct {
			last  uint64
			epoch uint32
		}{}
		e[pub] = t
	} else if seq <= t.last {
		t.epoch++
	}
	t.last = seq
	return t.epoch
}

// pcapFile is a pcapng file of channel messages being written.
type pcapFile struct {
	f   *os.File
	w   *pcapgo.NgWriter
	buf []byte
	ep  epochs
}

// createPcap creates path (mode 0600; an existing file is refused) and
// writes the section and interface blocks for channel name, whose messages
// carry up to snap payload bytes.
func createPcap(path, name string, snap int) (*pcapFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	intf := pcapgo.DefaultNgInterface
	intf.Name = name
	intf.Description = "shmkit channel " + name
	intf.LinkType = linkTypeUser0
	intf.SnapLength = uint32(msgHeaderLen + snap)
	intf.TimestampResolution = 9
	w, err := pcapgo.NewNgWriterInterface(f, intf, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &pcapFile{f: f, w: w, ep: epochs{}}, nil
}

// write adds one message received at ts; m.Epoch is filled in here.
func (p *pcapFile) write(ts time.Time, m pcapMsg) error {
	m.Epoch = p.ep.of(int(m.Publisher), m.Seq)
	if uint64(len(m.Data)) < uint64(m.Len) {
		m.Flags |= msgFlagTrunc
	}
	p.buf = appendPcapMsg(p.buf[:0], m)
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p.buf), Length: msgHeaderLen + int(m.Len)}
	return p.w.WritePacket(ci, p.buf)
}

// close flushes and closes the file.
func (p *pcapFile) close() error {
	err := p.w.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recMsg is one message read back from a recording.
type recMsg struct {
	Time time.Time
	pcapMsg
}

// readPcap reads every message of a recording made by record or tap
// --pcapng. The file is untrusted input: a packet that is not a message
// is an error naming its number.
func readPcap(path string) ([]recMsg, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: not a pcapng file: %w", path, err)
	}
	var out []recMsg
	for n := 1; ; n++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: packet %d: %w", path, n, err)
		}
		if lt := r.LinkType(); lt != linkTypeUser0 {
			return nil, fmt.Errorf("%s: packet %d: link type %v, not USER0 (147): not a shmctl recording", path, n, lt)
		}
		m, err := parsePcapMsg(data)
		if err != nil {
			return nil, fmt.Errorf("%s: packet %d: %w", path, n, err)
		}
		m.Data = append([]byte(nil), m.Data...) // the reader reuses its buffer
		out = append(out, recMsg{Time: ci.Timestamp, pcapMsg: m})
	}
}
