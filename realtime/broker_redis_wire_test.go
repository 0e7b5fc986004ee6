package realtime

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

func TestRedisWireRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0, 0xff, '<', 'p', '>'}, 100_000)
	for _, m := range []*Message{
		{},
		{ID: 1, Data: []byte("<p>hi</p>")},
		{ID: math.MaxInt64, Data: []byte{0}},
		{ID: math.MinInt64, Close: -1},
		{ID: -1, Close: math.MaxInt32, Data: big},
		{Close: ClosePolicyViolation},
		{ID: 300, Close: math.MinInt32, Data: []byte{redisWireVersion, 0x80, 0x80}},
	} {
		got, err := decodeMessage("room:1", string(encodeMessage(m)))
		if err != nil {
			t.Fatalf("decode(encode(id %d close %d, %d bytes)): %v", m.ID, m.Close, len(m.Data), err)
		}
		if got.Topic != "room:1" || got.ID != m.ID || got.Close != m.Close || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("round trip: got id %d close %d %d bytes, want id %d close %d %d bytes",
				got.ID, got.Close, len(got.Data), m.ID, m.Close, len(m.Data))
		}
		if len(m.Data) == 0 && got.Data != nil {
			t.Fatalf("empty data decoded as %#v, want nil", got.Data)
		}
	}
	// The header stays small: a typical chat message costs 1 + 3 + 1 bytes of framing.
	if n := len(encodeMessage(&Message{ID: 100_000})); n != 5 {
		t.Errorf("header of id 100000 is %d bytes, want 5", n)
	}
}

func TestRedisWireRejects(t *testing.T) {
	for name, payload := range map[string]string{
		"empty":              "",
		"other version":      "\x02\x02\x00",
		"truncated id":       "\x01\x80",
		"missing close":      "\x01\x02",
		"truncated close":    "\x01\x02\x80",
		"overlong id":        "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x00",
		"close beyond int32": string(binary.AppendVarint([]byte{1, 0}, math.MaxInt32+1)),
	} {
		if m, err := decodeMessage("t", payload); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, m)
		}
	}
}

// FuzzRedisWireDecode feeds arbitrary payloads to the decoder: it must not panic, its varint must agree with
// encoding/binary, and whatever decodes must survive encode → decode unchanged.
func FuzzRedisWireDecode(f *testing.F) {
	for _, m := range []*Message{{}, {ID: 42, Data: []byte("<p>x</p>")}, {ID: -7, Close: 1008}} {
		f.Add(encodeMessage(m))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, payload []byte) {
		x, n := varint(string(payload))
		wx, wn := binary.Varint(payload)
		if n <= 0 != (wn <= 0) || n > 0 && (x != wx || n != wn) {
			t.Fatalf("varint(%x) = %d, %d; binary.Varint = %d, %d", payload, x, n, wx, wn)
		}
		m, err := decodeMessage("t", string(payload))
		if err != nil {
			return
		}
		again, err := decodeMessage("t", string(encodeMessage(m)))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", m, err)
		}
		if again.ID != m.ID || again.Close != m.Close || !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("unstable: %+v then %+v", m, again)
		}
	})
}
