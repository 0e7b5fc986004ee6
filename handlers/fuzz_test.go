package handlers_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"switchboard/views"
)

// FuzzMessageRender renders any text as a message and parses the HTML as a browser would: it must give the fixed
// structure of a message (article > header > a, time; p) with the text as exactly one text node inside the <p>,
// equal to the input, and no other element: no text can make markup.
func FuzzMessageRender(f *testing.F) {
	for _, s := range []string{
		"hello",
		"<img src=x onerror=alert(1)>",
		`</p><div id="nav" hx-swap-oob="true">x</div>`,
		`<div hx-get="/logout" hx-trigger="load">`,
		"</article></div><script>alert(1)</script>",
		"<!-- x --> <![CDATA[ y ]]> <?php ?>",
		"&amp; &lt; &#60; &#x3c; &notanentity; &",
		`"'` + "`",
		"line one\nline two\r\nthree\rfour",
		"tab\there",
		"nul\x00byte",
		"<p>nested</p>",
		"</p>",
		"<plaintext>",
		"<textarea>",
		"<table><tr><td>x",
		"<svg><foreignObject><p>x</p></foreignObject></svg>",
		"\ufeff\u202e\u200bzero-width",
		"é ü 日本語 🙂",
		"\xff\xfe invalid",
		" ",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		if err := views.MessageItem(views.Message{ID: 1, Author: "ana", Kind: "text", Text: s}).Render(context.Background(), &buf); err != nil {
			t.Fatalf("render: %v", err)
		}
		body := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
		nodes, err := html.ParseFragment(bytes.NewReader(buf.Bytes()), body)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if len(nodes) != 1 || nodes[0].DataAtom != atom.Article || attr(nodes[0], "id") != "msg-1" {
			t.Fatalf("not one article#msg-1 at the top: %q", buf.String())
		}
		var elements []string
		var p *html.Node
		for n := range nodes[0].Descendants() {
			if n.Type == html.ElementNode {
				elements = append(elements, n.Data)
				if n.DataAtom == atom.P {
					p = n
				}
			}
		}
		if got := strings.Join(elements, " "); got != "header a time p" {
			t.Fatalf("elements %q, want header a time p: %q", got, buf.String())
		}
		// What a browser's parser makes of the text itself: CR LF and CR become LF (input stream
		// preprocessing), and NUL in body text is dropped.
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n", "\x00", "").Replace(s)
		switch {
		case want == "" && p.FirstChild == nil:
		case want == "":
			t.Fatalf("empty text rendered as %q", buf.String())
		case p.FirstChild == nil || p.FirstChild != p.LastChild || p.FirstChild.Type != html.TextNode:
			t.Fatalf("the <p> does not hold exactly one text node: %q", buf.String())
		case p.FirstChild.Data != want:
			t.Fatalf("text %q, want %q (rendered %q)", p.FirstChild.Data, want, buf.String())
		}
	})
}
