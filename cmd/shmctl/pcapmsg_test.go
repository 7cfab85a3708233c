package main

import (
	"bytes"
	"testing"
)

func TestPcapMsgRoundTrip(t *testing.T) {
	m := pcapMsg{Flags: msgFlagTap | msgFlagTrunc, Publisher: 3 | 7<<8, Epoch: 2, Len: 300, Seq: 1 << 40, Missed: 5, Data: []byte("hello")}
	b := appendPcapMsg(nil, m)
	if len(b) != msgHeaderLen+5 {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := parsePcapMsg(b)
	if err != nil || got.Flags != m.Flags || got.Publisher != m.Publisher || got.Epoch != m.Epoch || got.Len != m.Len ||
		got.Seq != m.Seq || got.Missed != m.Missed || !bytes.Equal(got.Data, m.Data) {
		t.Fatalf("%+v, %v; want %+v", got, err, m)
	}
}

// FuzzPcapMsg: no packet makes the decoder panic, and what it accepts
// holds no more payload than the message's length.
func FuzzPcapMsg(f *testing.F) {
	f.Add(appendPcapMsg(nil, pcapMsg{Len: 3, Seq: 1, Data: []byte("abc")}))
	f.Add([]byte("SHMK\xff\xff\x01\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := parsePcapMsg(p)
		if err == nil && uint64(len(m.Data)) > uint64(m.Len) {
			t.Fatalf("accepted %d payload bytes for length %d", len(m.Data), m.Len)
		}
	})
}
