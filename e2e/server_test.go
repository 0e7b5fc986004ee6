package e2e

// The server under test: the real binary, built once per test binary, run as a subprocess on a random loopback
// port with a fresh SQLite file; stopped with SIGTERM (graceful) and started again on the same port and database.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchboard/internal/sbbuild"
)

const (
	serverStartTimeout = 30 * time.Second // build excluded: from exec to a healthy /healthz
	serverStopTimeout  = 15 * time.Second // main.shutdownTimeout is 10 s
	serverTick         = "200ms"          // the simulator's tick: the ticker test wants changes within 3 s
)

// buildServer returns the switchboard binary (built once, without -race).
func buildServer(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("e2e: the server is stopped with SIGTERM, which Windows lacks")
	}
	return sbbuild.Binary(t)
}

// server is one switchboard under test. Start and Stop may be called again and again: it keeps its port and its
// database, as a restarted deployment would.
type server struct {
	t    *testing.T
	bin  string
	Addr string // 127.0.0.1:port
	URL  string // http://Addr
	db   string
	log  *lockedBuffer // stdout and stderr of every run, in order

	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
	runs int
}

// startServer starts a fresh server (new database, free port) and stops it when the test ends. The server's log
// is saved under artifacts/ when the test fails.
func startServer(t *testing.T) *server {
	t.Helper()
	browser(t) // every test needs the browser: skip before building anything when there is none
	s := &server{
		t:    t,
		bin:  buildServer(t),
		Addr: freeAddr(t),
		db:   filepath.Join(t.TempDir(), "switchboard.db"),
		log:  &lockedBuffer{},
	}
	s.URL = "http://" + s.Addr
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			name := artifactPath(t, "server.log")
			if err := os.WriteFile(name, s.log.Bytes(), 0o644); err == nil {
				t.Logf("server log: %s", name)
			}
		}
	})
	s.Start()
	return s
}

// freeAddr picks a free loopback port: listen on :0, note the port, close.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("e2e: close the probe listener: %v", err)
	}
	return addr
}

var listeningLine = regexp.MustCompile(`msg="switchboard is listening" addr=(\S+)`)

// Start runs the binary on the server's port and database and waits until it listens and /healthz answers 200.
func (s *server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("e2e: Start: the server is running already")
	}
	s.runs++
	fmt.Fprintf(s.log, "=== run %d: %s -addr %s -db %s -tick %s\n", s.runs, s.bin, s.Addr, s.db, serverTick)
	cmd := exec.Command(s.bin, "-addr", s.Addr, "-db", s.db, "-tick", serverTick)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatalf("e2e: server stdout: %v", err)
	}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("e2e: start %s: %v", s.bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	listening := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(s.log, stdout)
	}()
	done := s.done
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		err := cmd.Wait()
		fmt.Fprintf(s.log, "=== run exited: %v\n", err)
		close(done)
	}()

	deadline := time.After(serverStartTimeout)
	select {
	case addr := <-listening:
		if addr != s.Addr {
			s.t.Fatalf("e2e: the server listens on %s, want %s", addr, s.Addr)
		}
	case <-done:
		s.t.Fatalf("e2e: the server exited before listening:\n%s", s.log.Tail(4<<10))
	case <-deadline:
		s.t.Fatalf("e2e: no %q line after %v:\n%s", "switchboard is listening", serverStartTimeout, s.log.Tail(4<<10))
	}
	for {
		if s.healthy() {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("e2e: the server exited before /healthz answered:\n%s", s.log.Tail(4<<10))
		case <-deadline:
			s.t.Fatalf("e2e: /healthz did not answer 200 within %v", serverStartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *server) healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// Stop sends SIGTERM and waits for a clean exit (status 0) within the grace period.
func (s *server) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("e2e: Stop: the server is not running")
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("e2e: SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(serverStopTimeout):
		s.kill()
		s.t.Fatalf("e2e: the server did not exit within %v of SIGTERM", serverStopTimeout)
	}
	state := s.cmd.ProcessState
	s.cmd = nil
	if state == nil || !state.Success() {
		s.t.Errorf("e2e: the server exited with %v after SIGTERM, want status 0", state)
	}
}

// kill ends the current run, if any, at once.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers and readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of everything written so far.
func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Tail returns the last n bytes written.
func (b *lockedBuffer) Tail(n int) string {
	all := b.Bytes()
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return string(all)
}
