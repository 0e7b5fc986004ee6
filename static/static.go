// Package static embeds the browser assets (built CSS, vendored htmx and its
// ws/sse extensions, the app's own JS) into the binary, so `go run .` needs
// neither Node nor a CDN. The files are produced by `make assets` and committed.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
)

// FS holds the embedded asset tree; paths are relative to this directory,
// e.g. "css/app.css" and "js/htmx.min.js".
//
//go:embed css js
var FS embed.FS

// hashLen is the number of hex characters of the SHA-256 kept as a version.
const hashLen = 10

// urlPrefix is where the assets are served; handlers mount FS under it.
const urlPrefix = "/static/"

// Assets maps embedded file names to short content hashes for cache-busting URLs.
// It is built once by NewAssets and is read-only afterwards, so it is safe for
// concurrent use.
type Assets struct {
	versions map[string]string // name ("css/app.css") -> first hashLen hex chars of sha256
}

// NewAssets hashes every file in FS and returns the lookup used to build asset URLs.
func NewAssets() (*Assets, error) {
	return newAssets(FS)
}

// newAssets hashes every regular file of fsys; split out so tests can use an fstest.MapFS.
func newAssets(fsys fs.FS) (*Assets, error) {
	a := &Assets{versions: make(map[string]string)}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a.versions[path] = hex.EncodeToString(sum[:])[:hashLen]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static: hash assets: %w", err)
	}
	return a, nil
}

// Version returns the short content hash of the embedded file name (e.g. "js/htmx.min.js"),
// and false when no such file is embedded.
func (a *Assets) Version(name string) (string, bool) {
	v, ok := a.versions[strings.TrimPrefix(name, "/")]
	return v, ok
}

// URL returns the public URL of the embedded file name with its content hash as a
// query, e.g. "/static/css/app.css?v=0123456789", so browsers may cache it forever.
// A name that is not embedded yields the plain "/static/<name>" (it will 404).
func (a *Assets) URL(name string) string {
	name = strings.TrimPrefix(name, "/")
	if v, ok := a.versions[name]; ok {
		return urlPrefix + name + "?v=" + v
	}
	return urlPrefix + name
}
