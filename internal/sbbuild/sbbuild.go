// Package sbbuild builds the switchboard binary once per test process, for the tests that run it as a
// subprocess (the root package's process tests, e2e, cmd/loadgen).
package sbbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of the switchboard binary, built without -race (the test binary may have it) from the
// module root on the first call. It skips t when there is no go command to build with.
func Binary(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command on PATH to build the switchboard binary: %v", err)
	}
	built.once.Do(func() { built.path, built.err = build(goTool) })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func build(goTool string) (string, error) {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the switchboard module (go env GOMOD is %q)", gomod)
	}
	if built.dir, err = os.MkdirTemp("", "switchboard-test-"); err != nil {
		return "", err
	}
	path := filepath.Join(built.dir, "switchboard")
	cmd := exec.Command(goTool, "build", "-o", path, ".")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s . (in %s): %w\n%s", path, cmd.Dir, err, out)
	}
	return path, nil
}

// Cleanup removes the binary, if one was built. Call it from TestMain after m.Run.
func Cleanup() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
