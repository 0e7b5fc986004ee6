package handlers_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// rawWS is a hand-made WebSocket client over a bare TCP connection. Unlike a real client library it writes any
// frame asked of it, legal or not (unmasked, reserved bits, reserved opcodes, oversize control frames, bad
// fragmentation), and reads the server's frames as they are on the wire. It is not safe for concurrent use,
// except that one goroutine may write while another reads.
type rawWS struct {
	conn *net.TCPConn
	br   *bufio.Reader
	Resp *http.Response // the handshake's answer (101 Switching Protocols)
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	rsv1 = 0x40
	rsv2 = 0x20
	rsv3 = 0x10

	noCloseFrame = -1 // waitClose: the connection ended (EOF, reset) without a close frame
)

// rawOptions changes a raw handshake.
type rawOptions struct {
	Origin string      // the Origin header; "" means the server's own origin, "-" means none
	Header http.Header // extra handshake headers
	NoAuth bool        // leave the session cookie out
}

// rawDial connects and performs the HTTP/1.1 upgrade by hand with the client's session cookie; it fails the test
// unless the server answers 101 with a correct Sec-WebSocket-Accept.
func (c *client) rawDial(path string, opts rawOptions) *rawWS {
	c.t.Helper()
	ws, err := c.rawUpgrade(path, opts)
	if err != nil {
		c.t.Fatalf("raw upgrade %s: %v", path, err)
	}
	c.t.Cleanup(func() { ws.conn.Close() })
	return ws
}

// rawUpgrade is rawDial for goroutines other than the test's: it returns errors instead of failing, and leaves
// closing the connection to the caller.
func (c *client) rawUpgrade(path string, opts rawOptions) (*rawWS, error) {
	u, err := url.Parse(c.srv.URL + path)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tcp := conn.(*net.TCPConn)
	keyBytes := make([]byte, 16)
	rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)

	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	req.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\n", key)
	switch opts.Origin {
	case "":
		fmt.Fprintf(&req, "Origin: %s\r\n", c.srv.URL)
	case "-":
	default:
		fmt.Fprintf(&req, "Origin: %s\r\n", opts.Origin)
	}
	if !opts.NoAuth {
		var cookies []string
		for _, ck := range c.http.Jar.Cookies(u) {
			cookies = append(cookies, ck.Name+"="+ck.Value)
		}
		if len(cookies) > 0 {
			fmt.Fprintf(&req, "Cookie: %s\r\n", strings.Join(cookies, "; "))
		}
	}
	for k, vs := range opts.Header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")

	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the handshake answer: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("status %d, want 101", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return &rawWS{conn: tcp, br: br, Resp: resp}, nil
}

// wsFrame is one frame as a client would put it on the wire, legal or not.
type wsFrame struct {
	Fin      bool
	RSV      byte // rsv1|rsv2|rsv3 bits as they sit in the first byte
	Op       byte
	Unmasked bool   // leave the mask out (a protocol error for a client)
	LenForm  int    // 0: the shortest length form; 7, 16 or 64 to force one
	Length   uint64 // if non-zero, the length written in the header instead of len(Payload)
	Payload  []byte
}

// encode lays the frame out byte by byte: FIN/RSV/opcode, MASK and the 7-bit length, the 16- or 64-bit extended
// length, the masking key, and the (masked) payload.
func (f wsFrame) encode() []byte {
	b0 := f.RSV&0x70 | f.Op&0x0f
	if f.Fin {
		b0 |= 0x80
	}
	n := uint64(len(f.Payload))
	if f.Length != 0 {
		n = f.Length
	}
	form := f.LenForm
	if form == 0 {
		switch {
		case n <= 125:
			form = 7
		case n <= 0xffff:
			form = 16
		default:
			form = 64
		}
	}
	out := []byte{b0, 0}
	switch form {
	case 7:
		out[1] = byte(n)
	case 16:
		out[1] = 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] = 127
		out = binary.BigEndian.AppendUint64(out, n)
	}
	if f.Unmasked {
		return append(out, f.Payload...)
	}
	out[1] |= 0x80
	var key [4]byte
	rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range f.Payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// textFrame is a complete, masked text message in one frame.
func textFrame(s string) wsFrame { return wsFrame{Fin: true, Op: opText, Payload: []byte(s)} }

// closeFrame is a masked close frame with a code (and no code at all when code is 0).
func closeFrame(code int, reason string) wsFrame {
	var p []byte
	if code != 0 {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
		p = append(p, reason...)
	}
	return wsFrame{Fin: true, Op: opClose, Payload: p}
}

// write sends frames, each written whole; the write deadline keeps a stalled server from hanging the test.
func (w *rawWS) write(frames ...wsFrame) error {
	var buf []byte
	for _, f := range frames {
		buf = append(buf, f.encode()...)
	}
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.conn.Write(buf)
	return err
}

// writeDribble sends a frame one byte per write, so the server sees it in as many TCP segments as it has bytes.
func (w *rawWS) writeDribble(f wsFrame) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for _, b := range f.encode() {
		if _, err := w.conn.Write([]byte{b}); err != nil {
			return err
		}
	}
	return nil
}

// serverFrame is one frame as the server sent it.
type serverFrame struct {
	Fin     bool
	RSV     byte
	Op      byte
	Masked  bool
	Payload []byte
	Code    int // close frames: the status code (1005 when the frame has none)
	Reason  string
}

// readFrame reads one frame within d.
func (w *rawWS) readFrame(d time.Duration) (serverFrame, error) {
	_ = w.conn.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return serverFrame{}, err
	}
	f := serverFrame{Fin: h[0]&0x80 != 0, RSV: h[0] & 0x70, Op: h[0] & 0x0f, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(w.br, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(w.br, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 16<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	var key [4]byte
	if f.Masked {
		if _, err := io.ReadFull(w.br, key[:]); err != nil {
			return f, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, f.Payload); err != nil {
		return f, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i%4]
		}
	}
	if f.Op == opClose {
		f.Code = 1005
		if len(f.Payload) >= 2 {
			f.Code = int(binary.BigEndian.Uint16(f.Payload))
			f.Reason = string(f.Payload[2:])
		}
	}
	return f, nil
}

// readMessage returns the next data message, reassembled from its fragments (the server splits messages larger
// than its write buffer), or the close frame. Pings and pongs are skipped.
func (w *rawWS) readMessage(d time.Duration) (serverFrame, error) {
	deadline := time.Now().Add(d)
	var msg serverFrame
	started := false
	for {
		f, err := w.readFrame(time.Until(deadline))
		if err != nil {
			return f, err
		}
		switch {
		case f.Op == opClose:
			return f, nil
		case f.Op == opPing || f.Op == opPong:
			continue
		case f.Op == opContinuation && !started:
			return f, errors.New("server sent a continuation frame without a start")
		case f.Op != opContinuation && started:
			return f, errors.New("server started a message inside another")
		case f.Op != opContinuation:
			msg, started = f, true
		default:
			msg.Payload = append(msg.Payload, f.Payload...)
		}
		if f.Fin {
			msg.Fin = true
			return msg, nil
		}
	}
}

// readUntil reads messages until one contains want.
func (w *rawWS) readUntil(want string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := w.readMessage(time.Until(deadline))
		if err != nil {
			return "", err
		}
		if m.Op == opClose {
			return "", fmt.Errorf("closed with %d %q while waiting for %q", m.Code, m.Reason, want)
		}
		if strings.Contains(string(m.Payload), want) {
			return string(m.Payload), nil
		}
	}
}

// waitClose reads (and drops) frames until the server's close frame, whose code it returns, or until the
// connection ends without one (noCloseFrame). A connection still open after d is an error.
func (w *rawWS) waitClose(d time.Duration) (code int, err error) {
	deadline := time.Now().Add(d)
	for {
		f, err := w.readFrame(time.Until(deadline))
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return 0, fmt.Errorf("still open after %v", d)
		case err != nil: // EOF, reset: the server hung up
			return noCloseFrame, nil
		case f.Op == opClose:
			return f.Code, nil
		}
	}
}

// reset ends the connection with a TCP RST instead of a FIN.
func (w *rawWS) reset() error {
	if err := w.conn.SetLinger(0); err != nil {
		return err
	}
	return w.conn.Close()
}

// Close closes the TCP connection (FIN) without a closing handshake.
func (w *rawWS) Close() error { return w.conn.Close() }
