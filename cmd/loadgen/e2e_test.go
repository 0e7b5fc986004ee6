package main

// End-to-end smoke tests: loadgen, run in-process through run, loads a real Switchboard process on a random
// loopback port with a fresh SQLite file, in each mode, at a size that takes a few seconds. The server binary is
// built once per test binary from the module root, without -race.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchboard/internal/sbbuild"
)

const (
	serverStartWait = 20 * time.Second // binary start → its listening line and a 200 from /healthz
	loadgenTimeout  = 60 * time.Second // one loadgen run, setup included
)

// serverFlags lift the limits that would otherwise shape the load (bench/README.md); -redis= keeps a REDIS_URL in
// the environment out, and the listening line is read in text format.
var serverFlags = []string{"-send-rate", "100000", "-send-burst", "100000", "-max-user-conns", "100000",
	"-redis=", "-log-format", "text"}

var listeningLine = regexp.MustCompile(`msg="switchboard is listening".*\baddr=(\S+)`)

func TestMain(m *testing.M) {
	code := m.Run()
	sbbuild.Cleanup()
	os.Exit(code)
}

// buildSwitchboard returns the server binary (built once, without -race); it skips the test with -short or
// without /proc.
func buildSwitchboard(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: builds and runs the server; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("e2e: loadgen reads the server's CPU and memory from /proc")
	}
	return sbbuild.Binary(t)
}

// server is one Switchboard process; its stdout and stderr (and a restarted server's) go to log.
type server struct {
	bin, addr, url, db, log, dir string
	pid                          int
}

// startServer runs the binary on 127.0.0.1:0 with a fresh database and the extra flags, and returns once it
// answers /healthz. It is killed at cleanup; on failure the log's tail goes into the test log.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{bin: buildSwitchboard(t), dir: t.TempDir()}
	s.db, s.log = filepath.Join(s.dir, "switchboard.db"), filepath.Join(s.dir, "server.log")
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, append(append([]string{"-addr", "127.0.0.1:0", "-db", s.db}, serverFlags...), extra...)...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close()
	if err != nil {
		t.Fatalf("start %s: %v", s.bin, err)
	}
	s.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- server log (%s) ---\n%s", s.log, logTail(s.log))
		}
	})

	deadline := time.Now().Add(serverStartWait)
	for s.url == "" {
		data, _ := os.ReadFile(s.log)
		if m := listeningLine.FindSubmatch(data); m != nil {
			s.addr, s.url = string(m[1]), "http://"+string(m[1])
			break
		}
		select {
		case <-done:
			t.Fatalf("the server exited before listening:\n%s", data)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within %s:\n%s", serverStartWait, data)
		}
	}
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz: no 200 within %s (last: %v)", serverStartWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logTail is about the last 8 KB of a file.
func logTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 8<<10 {
		data = data[len(data)-8<<10:]
	}
	return string(data)
}

// runLoadgen runs loadgen with args and --quiet, and returns its JSON line, which must be its only output.
func runLoadgen(t *testing.T, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loadgenTimeout)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	if err := run(ctx, append(args, "--quiet"), &out); err != nil {
		t.Fatalf("loadgen %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("loadgen %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out.String())
	var m map[string]any
	if strings.Count(out.String(), "\n") != 1 || json.Unmarshal(out.Bytes(), &m) != nil {
		t.Fatalf("want one line of a JSON object on stdout, got %q", out.String())
	}
	return m
}

// number is m[key], where "a.b" reaches into an object; the test fails unless it is a JSON number.
func number(t *testing.T, m map[string]any, key string) float64 {
	t.Helper()
	var v any = m
	for k := range strings.SplitSeq(key, ".") {
		obj, _ := v.(map[string]any)
		v = obj[k]
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%s is %v, want a number", key, v)
	}
	return f
}

// TestE2EChat: 20 sockets in 2 rooms, 4 senders at 40 msg/s for 1 s: every send reaches all 10 sockets of its
// room, and the server figures from --pid are there.
func TestE2EChat(t *testing.T) {
	const conns, rooms, rate, seconds = 20, 2, 40, 1
	srv := startServer(t, "-feed", "none")
	m := runLoadgen(t, "--url", srv.url, "--pid", strconv.Itoa(srv.pid), "--conns", strconv.Itoa(conns),
		"--rooms", strconv.Itoa(rooms), "--senders", "4", "--rate", strconv.Itoa(rate), "--seconds", strconv.Itoa(seconds))

	sent, delivered, expected := number(t, m, "sent"), number(t, m, "delivered"), number(t, m, "expected")
	if sent != rate*seconds {
		t.Errorf("sent %v, want %d (rate × seconds)", sent, rate*seconds)
	}
	if expected != sent*conns/rooms {
		t.Errorf("expected %v, want sent × room size = %v", expected, sent*conns/rooms)
	}
	if delivered != expected || number(t, m, "lost") != 0 {
		t.Errorf("delivered %v of %v expected, lost %v; want all, 0 lost", delivered, expected, m["lost"])
	}
	if p99 := number(t, m, "latency_ms.p99"); p99 <= 0 {
		t.Errorf("latency p99 %v ms, want > 0", p99)
	}
	for _, k := range []string{"server_cpu_us_per_delivery", "server_cpu_pct", "server_rss_bytes_per_conn"} {
		number(t, m, k) // null without --pid figures
	}
	if mb := number(t, m, "server_rss_mb"); mb <= 0 {
		t.Errorf("server_rss_mb %v, want > 0", mb)
	}
	for _, k := range []string{"send_errors", "refused", "drops"} {
		if v := number(t, m, k); v != 0 {
			t.Errorf("%s %v, want 0", k, v)
		}
	}
}

// TestE2ESSE: 5 subscribers for 1 s to a simulated feed ticking every 100 ms, on the JSON stream (bearer token
// created through the settings form) and on the page's HTML stream (sessions): events arrive, no stream fails.
func TestE2ESSE(t *testing.T) {
	srv := startServer(t, "-feed", "sim", "-tick", "100ms")
	for _, tc := range []struct{ name, path, basis string }{
		{"json", "/api/stock-stream", "timestamp"},
		{"html", "/ticker/stream", "first-receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := runLoadgen(t, "--mode", "sse", "--url", srv.url, "--pid", strconv.Itoa(srv.pid), "--path", tc.path,
				"--conns", "5", "--seconds", "1")
			if ev := number(t, m, "events"); ev <= 0 {
				t.Errorf("events %v, want > 0", ev)
			}
			if f := number(t, m, "failures"); f != 0 {
				t.Errorf("failures %v, want 0", f)
			}
			if v := number(t, m, "events_per_sub_per_s"); v <= 0 {
				t.Errorf("events_per_sub_per_s %v, want > 0", v)
			}
			if m["latency_basis"] != tc.basis {
				t.Errorf("latency_basis %v, want %s", m["latency_basis"], tc.basis)
			}
			for _, k := range []string{"latency_ms.p50", "server_cpu_ms_per_s", "server_cpu_us_per_event", "server_rss_bytes_per_sub", "server_rss_mb"} {
				number(t, m, k)
			}
		})
	}
}

// TestE2EReconnect: 20 sockets in 2 rooms while bench/restart-server.sh restarts the server (SIGTERM, same
// address and database); 10 messages posted once it is back: every client comes back and catches up, nothing lost.
func TestE2EReconnect(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("e2e: bench/restart-server.sh needs bash: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "bench", "restart-server.sh"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "-feed", "none")
	pidFile := filepath.Join(srv.dir, "server.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(srv.pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the restarted server is the script's child, not ours
		if pid := readPID(pidFile); pid > 0 && pid != srv.pid {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	restart := append([]string{bash, script, pidFile, srv.log, "--", srv.bin, "-addr", srv.addr, "-db", srv.db}, serverFlags...)
	restart = append(restart, "-feed", "none")

	m := runLoadgen(t, "--mode", "reconnect", "--url", srv.url, "--conns", "20", "--rooms", "2", "--messages", "10",
		"--timeout", "20s", "--restart-cmd", shellQuote(restart))
	if v := number(t, m, "posted"); v != 10 {
		t.Errorf("posted %v, want 10", v)
	}
	for _, k := range []string{"not_back", "not_caught_up", "lost", "duplicates"} {
		if v := number(t, m, k); v != 0 {
			t.Errorf("%s %v, want 0", k, v)
		}
	}
	number(t, m, "up_ms")
	number(t, m, "all_back_ms")
	number(t, m, "all_caught_up_ms")
	if pid := readPID(pidFile); pid == srv.pid || float64(pid) != number(t, m, "new_pid") {
		t.Errorf("new_pid %v, pid file %d, old pid %d: want the restarted server's pid", m["new_pid"], pid, srv.pid)
	}
}

func readPID(path string) int {
	data, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// shellQuote joins args into one sh command line.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
