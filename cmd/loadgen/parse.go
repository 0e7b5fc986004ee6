package main

import (
	"bytes"
	"iter"
	"math"
	"strconv"
)

// The load tool's message text is "t=<unix nanos of the scheduled send> k=<sender or sequence>": digits, '=' and a
// space survive HTML escaping unchanged, so the pushed fragment carries it verbatim inside <p …>TEXT</p>.

var (
	msgIDAttr = []byte(`id="msg-`)
	textMark  = []byte(">t=")
	keyMark   = []byte(" k=")
)

// chatText is the text the load tool sends.
func chatText(t int64, k int64) []byte {
	b := make([]byte, 0, 48)
	b = append(b, "t="...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, " k="...)
	return strconv.AppendInt(b, k, 10)
}

// pushedMessage is one message element found in a pushed fragment.
type pushedMessage struct {
	ID     int64 // the database id from id="msg-<id>" (0 if absent)
	T, K   int64 // the load tool's fields, when Marked
	Marked bool  // the text is the load tool's (join notices and others' texts are not)
}

// messagesIn yields every message element (id="msg-<id>") of a fragment, in order. Anything else in the frame
// (people lists, notices, unread marks, the room list) is skipped; malformed input never panics.
func messagesIn(p []byte) iter.Seq[pushedMessage] {
	return func(yield func(pushedMessage) bool) {
		scanMessages(p, yield)
	}
}

func scanMessages(p []byte, yield func(pushedMessage) bool) {
	for {
		i := bytes.Index(p, msgIDAttr)
		if i < 0 {
			return
		}
		p = p[i+len(msgIDAttr):]
		var m pushedMessage
		m.ID, p = leadingInt(p)
		end := bytes.Index(p, msgIDAttr) // this element's text lies before the next message
		if end < 0 {
			end = len(p)
		}
		if j := bytes.Index(p[:end], textMark); j >= 0 {
			rest := p[j+len(textMark) : end]
			var ok1, ok2 bool
			m.T, rest, ok1 = parseInt(rest)
			if ok1 && bytes.HasPrefix(rest, keyMark) {
				m.K, _, ok2 = parseInt(rest[len(keyMark):])
			}
			m.Marked = ok1 && ok2
		}
		if !yield(m) {
			return
		}
	}
}

func leadingInt(p []byte) (int64, []byte) {
	v, rest, _ := parseInt(p)
	return v, rest
}

// parseInt reads leading decimal digits; a number that overflows int64 is not a number.
func parseInt(p []byte) (int64, []byte, bool) {
	var v int64
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		d := int64(p[n] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, p[n:], false
		}
		v = v*10 + d
		n++
	}
	return v, p[n:], n > 0
}
