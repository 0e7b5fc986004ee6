package realtime

import "encoding/binary"

// TextFrame is m.Data as one unmasked WebSocket text frame, the form a server sends. It is built once, on first
// use, and the same bytes are written to every connection that gets m.
func (m *Message) TextFrame() []byte {
	m.frameOnce.Do(func() { m.frame = AppendTextFrame(nil, m.Data) })
	return m.frame
}

// AppendTextFrame appends payload to dst as one final, unmasked WebSocket text frame (RFC 6455 §5.2).
func AppendTextFrame(dst, payload []byte) []byte {
	const finText = 0x81
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, finText, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, finText, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, finText, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}
