package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

func TestMessagesIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []pushedMessage
	}{
		{"push", `<div hx-swap-oob="beforeend:#messages"><article id="msg-42" class="msg pt-1" data-author="b1u0"><header>…</header><p class="whitespace-pre-wrap break-words">t=1764100000000000000 k=3</p></article></div>`,
			[]pushedMessage{{ID: 42, T: 1764100000000000000, K: 3, Marked: true}}},
		{"join notice", `<div hx-swap-oob="beforeend:#messages"><article id="msg-7" class="notice"><span>bob joined</span></article></div>`,
			[]pushedMessage{{ID: 7}}},
		{"replay of two", `<div><article id="msg-8"><p>t=5 k=1</p></article><article id="msg-9"><p>hello t=6 k=2</p></article></div>`,
			[]pushedMessage{{ID: 8, T: 5, K: 1, Marked: true}, {ID: 9}}},
		{"replace list", `<div id="messages" hx-swap-oob="innerHTML"><article id="msg-10"><p>t=1 k=0</p></article></div>`,
			[]pushedMessage{{ID: 10, T: 1, K: 0, Marked: true}}},
		{"people list", `<ul id="people" hx-swap-oob="true"><li>alice</li></ul>`, nil},
		{"truncated", `<article id="msg-`, []pushedMessage{{}}},
		{"overflow", `<article id="msg-99999999999999999999"><p>t=99999999999999999999 k=1</p>`, []pushedMessage{{}}},
		{"no key", `<article id="msg-3"><p>t=12</p>`, []pushedMessage{{ID: 3, T: 12}}},
		{"empty", ``, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []pushedMessage
			for m := range messagesIn([]byte(tc.in)) {
				got = append(got, m)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestChatTextRoundTrip(t *testing.T) {
	ts := time.Now().UnixNano()
	frag := append(append([]byte(`<article id="msg-1"><p class="x">`), chatText(ts, 17)...), "</p></article>"...)
	var got []pushedMessage
	for m := range messagesIn(frag) {
		got = append(got, m)
	}
	if len(got) != 1 || got[0] != (pushedMessage{ID: 1, T: ts, K: 17, Marked: true}) {
		t.Fatalf("got %+v", got)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if s := h.Summary(); s.P50 != nil || s.Max != nil {
		t.Fatalf("empty summary: %+v", s)
	}
	for i := 1; i <= 1000; i++ { // 1..1000 ms
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summary()
	check := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || *got < want*0.99 || *got > want*1.01 {
			t.Errorf("%s = %v, want ≈ %v", name, got, want)
		}
	}
	check("p50", s.P50, 501) // rank floor(0.5·1000) of 1..1000
	check("p90", s.P90, 901)
	check("p99", s.P99, 991)
	check("max", s.Max, 1000)
	for v := uint64(0); v < 1<<40; v = v*3 + 1 {
		b := bucketOf(v)
		if mid := bucketValue(b); mid < float64(v)*0.99-1 || mid > float64(v)*1.01+1 {
			t.Fatalf("bucket %d of %d has middle %v", b, v, mid)
		}
	}
}

// TestRawConnFrames checks the hand-rolled framing against frames written by hand: text in one and in two
// fragments, a ping answered with a pong, a 16-bit length, and a close frame reported with its code.
func TestRawConnFrames(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	r := &rawConn{c: client, br: bufio.NewReader(client)}
	r.rng = newTestPCG()
	long := bytes.Repeat([]byte("x"), 300)
	go func() {
		w := bufio.NewWriter(server)
		w.Write([]byte{0x81, 5})
		w.WriteString("hello")
		w.Write([]byte{0x01, 3})
		w.WriteString("hel")
		w.Write([]byte{0x89, 2})
		w.WriteString("pp")
		w.Write([]byte{0x80, 2})
		w.WriteString("lo")
		w.Write([]byte{0x81, 126, 0x01, 0x2c})
		w.Write(long)
		w.Write([]byte{0x88, 2, 0x03, 0xf4}) // 1012
		w.Flush()
	}()
	pong := make(chan []byte, 1)
	reads := make(chan []byte, 8)
	go func() { // the server side reads what the client writes: the pong, then the close answer
		br := bufio.NewReader(server)
		for range 2 {
			h := make([]byte, 6)
			if _, err := ioReadFull(br, h); err != nil {
				return
			}
			n := int(h[1] & 0x7f)
			p := make([]byte, n)
			ioReadFull(br, p)
			for i := range p {
				p[i] ^= h[2+i%4]
			}
			if h[0] == 0x8A {
				pong <- p
			} else {
				reads <- append([]byte{h[0]}, p...)
			}
		}
	}()
	for _, want := range []string{"hello", "hello", string(long)} {
		got, err := r.Next()
		if err != nil || string(got) != want {
			t.Fatalf("Next = %q, %v; want %q", got, err, want)
		}
	}
	if p := <-pong; string(p) != "pp" {
		t.Errorf("pong payload %q", p)
	}
	_, err := r.Next()
	if closeCode(err) != 1012 {
		t.Errorf("close: %v", err)
	}
	if got := <-reads; got[0] != 0x88 || binary.BigEndian.Uint16(got[1:]) != 1012 {
		t.Errorf("close answer %x", got)
	}
}

func TestMaskBytes(t *testing.T) {
	in := []byte("the quick brown fox jumps over")
	mask := [4]byte{1, 2, 3, 4}
	got := slices.Clone(in)
	maskBytes(got, mask)
	for i := range in {
		if got[i] != in[i]^mask[i%4] {
			t.Fatalf("byte %d: %x", i, got[i])
		}
	}
}

func newTestPCG() *mrand.PCG { return mrand.NewPCG(1, 2) }

func ioReadFull(r io.Reader, p []byte) (int, error) { return io.ReadFull(r, p) }
