// Package e2e holds Switchboard's browser tests: they build the real binary, run it on a random loopback port with
// a fresh SQLite file, and drive Debian's chromium through chromedp as two (or more) users in separate browser
// contexts. Without a Chromium binary (PATH, or $CHROMIUM_PATH) every test skips.
//
// Run them with `go test ./e2e/`; screenshots and logs go to e2e/artifacts/ (git-ignored).
package e2e
