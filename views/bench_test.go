package views_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"switchboard/views"
)

// BenchmarkRenderMessage is the render done once per message before its fan-out.
func BenchmarkRenderMessage(b *testing.B) {
	m := views.Message{ID: 42, Author: "ana", Kind: "text", Text: "t=1764100000000000000 k=3 <b>escaped</b> & more", At: time.Now(), ClientID: "c-0123456789abcdef"}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := views.MessageAppend(m).Render(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/fragment")
}
