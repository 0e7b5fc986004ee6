package handlers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// checkCleaned fails unless out is what cleanText may accept: valid UTF-8, 1–4000 runes, no control character
// other than newline and tab, no surrounding white space, and a fixed point of cleanText.
func checkCleaned(t *testing.T, in, out string) {
	t.Helper()
	switch n := utf8.RuneCountInString(out); {
	case !utf8.ValidString(out):
		t.Fatalf("cleanText(%q) = %q: invalid UTF-8", in, out)
	case n < 1 || n > maxText:
		t.Fatalf("cleanText(%q) = %q: %d runes", in, out, n)
	case strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }):
		t.Fatalf("cleanText(%q) = %q: a control character", in, out)
	case out != strings.TrimSpace(out):
		t.Fatalf("cleanText(%q) = %q: not trimmed", in, out)
	}
	again, err := cleanText(out)
	if err != nil || again != out {
		t.Fatalf("cleanText(%q) = %q, but cleanText of that = %q, %v", in, out, again, err)
	}
}

// checkRefusal fails unless err is the sender-facing 422 cleanText and send return.
func checkRefusal(t *testing.T, in string, err error) {
	t.Helper()
	var fe *fiber.Error
	if !errors.As(err, &fe) || fe.Code != fiber.StatusUnprocessableEntity || fe.Message == "" {
		t.Fatalf("cleanText(%q): error %v, want a 422 for the sender", in, err)
	}
}

// FuzzCleanText: any input is accepted as a clean message or refused with a 422, never a panic.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{
		"hello", "  padded  ", "", " ", "\n\t\r\n", "a\r\nb", "a\rb", "\r\r\n", "tab\tin", "nul\x00", "\x1b[31mred",
		"\u0085next line", "\u00a0nbsp\u00a0", "\u2028\u2029", "\ufeffbom", "\u202eRTL", "\u200b", "é", "🙂",
		"\xff\xfe", "\xed\xa0\x80", "a\xc3", strings.Repeat("x", maxText), strings.Repeat("x", maxText+1),
		strings.Repeat("é", maxText/2+1), " " + strings.Repeat("x", maxText) + "\n",
		"<img src=x onerror=alert(1)>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := cleanText(s)
		if err != nil {
			checkRefusal(t, s, err)
			return
		}
		checkCleaned(t, s, out)
	})
}

// socketFrame is what roomSocket decodes from a client's frame (the fields of htmx's ws-send).
type socketFrame struct {
	Text     string `json:"text"`
	ClientID string `json:"client_id"`
}

// decodeSocketFrame is the socket's decode-and-validate path up to the store: the UTF-8 check (close 1007), the
// JSON decode (an error frame), cleanText and the client id check of send (an error frame). It reports the close
// code, or the cleaned text and client id, or a refusal.
func decodeSocketFrame(data []byte) (closeCode int, text, clientID string, err error) {
	if !utf8.Valid(data) {
		return 1007, "", "", nil
	}
	var in socketFrame
	if err := json.Unmarshal(data, &in); err != nil {
		return 0, "", "", err
	}
	text, err = cleanText(in.Text)
	if err != nil {
		return 0, "", "", err
	}
	if len(in.ClientID) > maxClientID || strings.ContainsFunc(in.ClientID, isControl) {
		return 0, "", "", fiber.NewError(fiber.StatusUnprocessableEntity, "The client id is invalid.")
	}
	return 0, text, in.ClientID, nil
}

// FuzzSocketFrame feeds any bytes to the socket's decode-and-validate path: no panic, and whatever passes is a
// clean text with a short, printable client id.
func FuzzSocketFrame(f *testing.F) {
	for _, s := range []string{
		`{"text":"hello","client_id":"c-123","HEADERS":{"HX-Request":"true","HX-Trigger":"compose","HX-Trigger-Name":null,"HX-Target":"compose","HX-Current-URL":"http://x/rooms/1"}}`,
		`{"text":"hi"}`, `{"text":""}`, `{"text":"   "}`, `{"text":123}`, `{"text":null}`, `{"text":["a"]}`,
		`{"text":{"nested":"x"}}`, `{"room":2,"text":"x"}`, `{"TEXT":"case","Client_ID":"c"}`, `{"text":"a","text":"b"}`,
		`{"text":"\u0000"}`, `{"text":"\ud800"}`, `{"text":"\udbff\udfff"}`, `{"text":"x","client_id":"\u0007"}`,
		`{"text":"x","client_id":"` + strings.Repeat("c", maxClientID+1) + `"}`, `{"text":"` + strings.Repeat("y", 4001) + `"}`,
		`{"text":"</p><div id=\"nav\" hx-swap-oob=\"true\">x</div>"}`, "{\"text\":\"\xff\xfe\"}",
		`null`, `[]`, `"text"`, `{`, `not json`, ``, `{"text":"x"} trailing`,
		strings.Repeat("[", 1000) + strings.Repeat("]", 1000), `{"a":` + strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat("}", 1001),
		strings.Repeat("[", 20000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		code, text, clientID, err := decodeSocketFrame(data)
		switch {
		case code != 0:
			if code != 1007 || utf8.Valid(data) {
				t.Fatalf("close %d for %q", code, data)
			}
		case err != nil:
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			var fe *fiber.Error
			if !errors.As(err, &se) && !errors.As(err, &te) && !errors.As(err, &fe) && !strings.Contains(err.Error(), "json") {
				t.Fatalf("unexpected error kind %T: %v", err, err)
			}
		default:
			if !utf8.Valid(data) {
				t.Fatalf("invalid UTF-8 accepted: %q", data)
			}
			checkCleaned(t, string(data), text)
			if len(clientID) > maxClientID || strings.ContainsFunc(clientID, unicode.IsControl) {
				t.Fatalf("client id %q accepted", clientID)
			}
		}
	})
}
