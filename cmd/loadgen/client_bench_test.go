package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkClientNext compares the per-message cost of the two WebSocket clients on the same loopback stream of
// 480-byte server frames (what a pushed message weighs), written 16 to a write so that the writer stays cheap.
func BenchmarkClientNext(b *testing.B) {
	for _, client := range []string{"raw", "coder"} {
		b.Run(client, func(b *testing.B) {
			payload := make([]byte, 480)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			frame := append([]byte{0x81, 126, byte(len(payload) >> 8), byte(len(payload))}, payload...)
			var batch []byte
			for range 16 {
				batch = append(batch, frame...)
			}
			n := b.N
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, rw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer c.Close()
				sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + wsGUID))
				fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
				rw.Flush()
				w2 := bufio.NewWriterSize(c, len(batch))
				for sent := 0; sent < n; sent += 16 {
					if _, err := w2.Write(batch); err != nil {
						return
					}
					w2.Flush()
				}
				select {} // keep the socket open until the test ends
			}))
			defer srv.Close()
			d, _ := newDialer("")
			conn, err := dialWS(context.Background(), client, d, 0, srv.URL+"/ws?x="+strconv.Itoa(n), "")
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(1000)
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for range n {
				p, err := conn.Next()
				if err != nil || len(p) != len(payload) {
					b.Fatalf("Next: %d bytes, %v", len(p), err)
				}
			}
			b.StopTimer()
		})
	}
}
