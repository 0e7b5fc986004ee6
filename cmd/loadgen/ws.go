package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

const (
	handshakeTimeout = 10 * time.Second // dial + upgrade of one socket
	writeTimeout     = 10 * time.Second // one client frame
	closeTimeout     = 2 * time.Second  // our close frame on the way out
	readBufferSize   = 4096             // per raw socket; several queued frames arrive in one read
	maxMessage       = 4 << 20          // a larger server message is a protocol error here
	wsGUID           = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	ipBindAddrNoPort = 24 // IP_BIND_ADDRESS_NO_PORT (Linux ≥ 4.2): pick the port at connect, not at bind
)

// wsConn is one client WebSocket as the load tool needs it: messages in, text frames out.
type wsConn interface {
	// Next returns the next data message's payload; it is valid until the next call. Pings are answered inside.
	Next() ([]byte, error)
	// Send writes one text message; it is safe beside Next but not beside another Send.
	Send([]byte) error
	// Close sends a close frame (best effort, bounded) and releases the socket.
	Close(code int)
}

// CloseError is a close frame the server sent.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed by server: %d %s", e.Code, e.Reason) }

// closeCode is the close code in err, or 1006 (abnormal closure) for a dropped connection.
func closeCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	if c := websocket.CloseStatus(err); c != -1 {
		return int(c)
	}
	return 1006
}

// dialer makes loopback TCP connections from a list of source addresses (round robin by client index), so more
// than one port range's worth of sockets can reach one server address.
type dialer struct {
	sources []net.IP
	cookie  string // sent as the Cookie header; "" sends none
}

func newDialer(sourceIPs string) (*dialer, error) {
	d := &dialer{}
	for _, s := range strings.Split(sourceIPs, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("--source-ips: %q is not an IP address", s)
		}
		d.sources = append(d.sources, ip)
	}
	return d, nil
}

// netDialer is the dialer for client i.
func (d *dialer) netDialer(i int) *net.Dialer {
	nd := &net.Dialer{Timeout: handshakeTimeout}
	if len(d.sources) > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: d.sources[i%len(d.sources)]}
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddrNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return nd
}

// dialWS opens a WebSocket with the chosen client library.
func dialWS(ctx context.Context, client string, d *dialer, i int, rawURL string, cookie string) (wsConn, error) {
	if client == "coder" {
		return dialCoder(ctx, d, i, rawURL, cookie)
	}
	return dialRaw(ctx, d, i, rawURL, cookie)
}

// ---- raw client: handshake and RFC 6455 framing by hand, one bufio.Reader per socket, no extra goroutines.

type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte // the current message

	wmu  sync.Mutex // guards writes: Send and the pong/close replies from Next
	wbuf []byte
	rng  *mrand.PCG
}

func dialRaw(ctx context.Context, d *dialer, i int, rawURL, cookie string) (*rawConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	c, err := d.netDialer(i).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", u.RequestURI(), u.Host)
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	if cookie != "" {
		fmt.Fprintf(&req, "Cookie: %s\r\n", cookie)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, readBufferSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, &httpError{Status: resp.StatusCode, Body: string(body)}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, errors.New("upgrade response: wrong Sec-WebSocket-Accept")
	}
	_ = c.SetDeadline(time.Time{})
	return &rawConn{c: c, br: br, rng: mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))}, nil
}

// httpError is a refused upgrade or request.
type httpError struct {
	Status int
	Body   string
}

func (e *httpError) Error() string {
	body := strings.Join(strings.Fields(e.Body), " ")
	if len(body) > 160 {
		body = body[:160] + "…"
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, body)
}

func (r *rawConn) Next() ([]byte, error) {
	r.buf = r.buf[:0]
	for {
		// The header: peeked in place, so reading a frame allocates nothing.
		h, err := r.br.Peek(2)
		if err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		masked := h[1]&0x80 != 0
		n := uint64(h[1] & 0x7f)
		hl := 2
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if masked { // servers must not mask, but reading it costs nothing
			hl += 4
		}
		if h, err = r.br.Peek(hl); err != nil {
			return nil, err
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(h[2:]))
		case 127:
			n = binary.BigEndian.Uint64(h[2:])
		}
		var mask [4]byte
		if masked {
			copy(mask[:], h[hl-4:])
		}
		_, _ = r.br.Discard(hl)
		if n > maxMessage || uint64(len(r.buf))+n > maxMessage {
			return nil, fmt.Errorf("server message larger than %d bytes", maxMessage)
		}
		start := len(r.buf)
		r.buf = slices.Grow(r.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(r.br, r.buf[start:]); err != nil {
			return nil, err
		}
		if masked {
			for j := start; j < len(r.buf); j++ {
				r.buf[j] ^= mask[(j-start)&3]
			}
		}
		switch op {
		case 0x0, 0x1, 0x2: // continuation, text, binary
			if fin {
				return r.buf, nil
			}
		case 0x8: // close: answer with the same code, report it
			p := r.buf[start:]
			ce := &CloseError{Code: 1005}
			if len(p) >= 2 {
				ce.Code, ce.Reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
			}
			r.writeFrame(0x8, p[:min(len(p), 2)], time.Now().Add(closeTimeout))
			r.c.Close()
			return nil, ce
		case 0x9: // ping → pong with the same payload
			p := append([]byte(nil), r.buf[start:]...)
			r.buf = r.buf[:start]
			if err := r.writeFrame(0xA, p, time.Now().Add(writeTimeout)); err != nil {
				return nil, err
			}
		case 0xA: // pong
			r.buf = r.buf[:start]
		default:
			return nil, fmt.Errorf("unknown opcode %d", op)
		}
	}
}

func (r *rawConn) Send(p []byte) error {
	return r.writeFrame(0x1, p, time.Now().Add(writeTimeout))
}

// writeFrame writes one masked, final frame (clients must mask).
func (r *rawConn) writeFrame(op byte, p []byte, deadline time.Time) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	b := r.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := uint32(r.rng.Uint64())
	var mask [4]byte
	binary.BigEndian.PutUint32(mask[:], key)
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], mask)
	r.wbuf = b
	_ = r.c.SetWriteDeadline(deadline)
	_, err := r.c.Write(b)
	return err
}

func maskBytes(b []byte, mask [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(mask[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for j := 0; i < len(b); i, j = i+1, j+1 {
		b[i] ^= mask[j&3]
	}
}

func (r *rawConn) Close(code int) {
	_ = r.writeFrame(0x8, binary.BigEndian.AppendUint16(nil, uint16(code)), time.Now().Add(closeTimeout))
	_ = r.c.Close()
}

// ---- coder/websocket client, for comparison (--client coder).

type coderConn struct {
	c   *websocket.Conn
	buf []byte
}

func dialCoder(ctx context.Context, d *dialer, i int, rawURL, cookie string) (*coderConn, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	u := strings.Replace(rawURL, "http", "ws", 1)
	hdr := http.Header{}
	if cookie != "" {
		hdr.Set("Cookie", cookie)
	}
	nd := d.netDialer(i)
	hc := &http.Client{Transport: &http.Transport{DialContext: nd.DialContext, DisableCompression: true}}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: hdr, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &httpError{Status: resp.StatusCode}
		}
		return nil, err
	}
	c.SetReadLimit(maxMessage)
	return &coderConn{c: c}, nil
}

func (c *coderConn) Next() ([]byte, error) {
	_, r, err := c.c.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err == io.EOF {
			return c.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (c *coderConn) Send(p []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return c.c.Write(ctx, websocket.MessageText, p)
}

func (c *coderConn) Close(code int) {
	done := make(chan struct{})
	go func() { _ = c.c.Close(websocket.StatusCode(code), ""); close(done) }()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		_ = c.c.CloseNow()
	}
}
