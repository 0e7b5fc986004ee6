package realtime_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"switchboard/realtime"
)

func TestTextFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := realtime.AppendTextFrame(nil, payload)
		if f[0] != 0x81 {
			t.Fatalf("n=%d: first byte %#x, want FIN+text", n, f[0])
		}
		var length, header int
		switch f[1] {
		case 126:
			length, header = int(binary.BigEndian.Uint16(f[2:])), 4
		case 127:
			length, header = int(binary.BigEndian.Uint64(f[2:])), 10
		default:
			length, header = int(f[1]), 2
		}
		if f[1]&0x80 != 0 || length != n || len(f) != header+n || !bytes.Equal(f[header:], payload) {
			t.Fatalf("n=%d: header %d, length %d, frame %d bytes", n, header, length, len(f))
		}
	}
	m := &realtime.Message{Data: []byte("hello")}
	if a, b := m.TextFrame(), m.TextFrame(); &a[0] != &b[0] || string(a) != "\x81\x05hello" {
		t.Fatalf("TextFrame is not built once: %q", a)
	}
}
