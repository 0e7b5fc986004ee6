// Package redistest gives tests a real Redis: a redis-server of their own on a free port (which they can stop and
// restart), or the shared one named by TEST_REDIS_URL when no redis-server binary is installed.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 10 * time.Second // from exec to answering PING
	stopTimeout  = 5 * time.Second  // from SIGTERM to exit, before SIGKILL
	pollInterval = 10 * time.Millisecond
)

// EnvURL names the variable holding a Redis URL to test against when no redis-server binary exists.
const EnvURL = "TEST_REDIS_URL"

// Server is a Redis for one test. Stop and Restart work only on a server this package started (Local).
type Server struct {
	// URL is redis://host:port for the broker; it stays the same across Restart.
	URL string

	t    testing.TB
	bin  string // "" for an external server
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
	out  *lockedWriter // the current process's output, shown when it fails to start
}

// Binary returns the path of redis-server (/usr/bin/redis-server or the first on PATH), or "" if there is none.
func Binary() string {
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	return ""
}

// Start returns a running Redis: its own redis-server when the binary exists, else the one at TEST_REDIS_URL
// (shared, so use unique topics). It skips the test when there is neither. The server is stopped at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	if Binary() != "" {
		return StartLocal(t)
	}
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{URL: u, t: t}
	}
	t.Skip("redistest: no redis-server binary (looked in /usr/bin and on PATH) and " + EnvURL + " is unset; " +
		"install redis-server or set " + EnvURL + "=redis://host:port to run this test")
	return nil
}

// StartLocal returns a redis-server of the test's own that Stop and Restart control. It skips the test when no
// redis-server binary exists (TEST_REDIS_URL cannot help: the test needs to stop the server).
func StartLocal(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("redistest: this test stops and restarts Redis, so it needs a redis-server binary " +
			"(looked in /usr/bin and on PATH); " + EnvURL + " is not enough")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	var err error
	for range 3 { // a free port can be taken between probing and binding it; try another
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if err = s.launch(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d", s.port)
	t.Cleanup(s.Stop)
	return s
}

// Local reports whether the test owns the server (Stop and Restart work).
func (s *Server) Local() bool { return s.bin != "" }

// Addr returns host:port of a Local server.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop shuts the server down (SIGTERM, then SIGKILL) and waits for it to exit; it is a no-op when it is already
// stopped. It may be called from any goroutine; it fails the test on an external server.
func (s *Server) Stop() {
	if s.bin == "" {
		s.t.Error("redistest: Stop on an external server (" + EnvURL + ")")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server if it runs and starts it again on the same port with an empty dataset. It may be
// called from any goroutine; it reports failure with t.Error.
func (s *Server) Restart() {
	if s.bin == "" {
		s.t.Error("redistest: Restart on an external server (" + EnvURL + ")")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.launchLocked(); err != nil {
		s.t.Errorf("redistest: restart: %v", err)
	}
}

func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.launchLocked()
}

// launchLocked starts redis-server on s.port and waits until it answers PING. s.mu must be held.
func (s *Server) launchLocked() error {
	out := &lockedWriter{w: new(bytes.Buffer)}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
		"--daemonize", "no",
	)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.out = cmd, done, out

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server on port %d exited at start:\n%s", s.port, out)
		default:
		}
		if ping(s.Addr()) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v:\n%s", s.port, readyTimeout,
				out)
		}
		time.Sleep(pollInterval)
	}
}

// stopLocked ends the process, if any. s.mu must be held.
func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedWriter lets the process's output be read while it is written.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
