package static

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// TestEmbeddedFiles checks that every built or vendored asset is in the binary and non-empty.
func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{
		"css/app.css",
		"js/htmx.min.js",
		"js/ext/ws.js",
		"js/ext/sse.js",
		"js/app.js",
	} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Errorf("%s: not embedded: %v", name, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s: embedded but empty", name)
		}
	}
}

// TestVendoredHTMXIsV2 guards the pin: the 2.x ws/sse extensions do not run on htmx 4.
func TestVendoredHTMXIsV2(t *testing.T) {
	b, err := fs.ReadFile(FS, "js/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `version:"2.`) {
		t.Error("js/htmx.min.js is not htmx 2.x; run `make vendor` with the pinned package.json")
	}
	for _, ext := range []string{"js/ext/ws.js", "js/ext/sse.js"} {
		b, err := fs.ReadFile(FS, ext)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "htmx.defineExtension(") {
			t.Errorf("%s does not register an htmx 2 extension", ext)
		}
	}
}

var urlRE = regexp.MustCompile(`^/static/css/app\.css\?v=[0-9a-f]{10}$`)

func TestAssetsURL(t *testing.T) {
	a, err := NewAssets()
	if err != nil {
		t.Fatal(err)
	}
	if got := a.URL("css/app.css"); !urlRE.MatchString(got) {
		t.Errorf("URL(css/app.css) = %q, want /static/css/app.css?v=<10 hex>", got)
	}
	if got, want := a.URL("/css/app.css"), a.URL("css/app.css"); got != want {
		t.Errorf("leading slash: URL = %q, want %q", got, want)
	}
	if got, want := a.URL("js/missing.js"), "/static/js/missing.js"; got != want {
		t.Errorf("URL(missing) = %q, want %q", got, want)
	}
	if _, ok := a.Version("js/missing.js"); ok {
		t.Error("Version(missing) reported ok")
	}
	// Different embedded files have different content, so their versions differ.
	ws, _ := a.Version("js/ext/ws.js")
	sse, _ := a.Version("js/ext/sse.js")
	if ws == "" || ws == sse {
		t.Errorf("Version(ws.js) = %q, Version(sse.js) = %q: want distinct non-empty hashes", ws, sse)
	}
}

// TestAssetsURLFollowsContent checks that the version changes exactly when the bytes do.
func TestAssetsURLFollowsContent(t *testing.T) {
	build := func(content string) *Assets {
		t.Helper()
		a, err := newAssets(fstest.MapFS{"css/app.css": {Data: []byte(content)}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	v1 := build("body{color:red}").URL("css/app.css")
	v1again := build("body{color:red}").URL("css/app.css")
	v2 := build("body{color:blue}").URL("css/app.css")
	if v1 != v1again {
		t.Errorf("same content, different URLs: %q vs %q", v1, v1again)
	}
	if v1 == v2 {
		t.Errorf("different content, same URL %q", v1)
	}
}
