package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name → content under dir, creating directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRender renders a results directory laid out as compare.sh writes it: one floor, a point with both rows
// (the peer's line has the peer's keys only) and a point whose peer run failed.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	ours := `{"peer":"switchboard","conns":1000,"rooms":10,"senders":10,"rate":200,"seconds":10,"sent":2000,"delivered":200000,"expected":200000,"deliveries_per_s":20000,"latency_ms":{"p50":1,"p90":3,"p99":5,"max":9},"server_rss_bytes_per_conn":20480,"server_rss_mb":60,"server_cpu_us_per_delivery":10,"server_cpu_pct":20,"bytes_per_delivery":300.4,"lost":0,"client_cpu_pct":30}`
	writeFiles(t, dir, map[string]string{
		"meta.txt": "date=2026-11-26 02:00 UTC\nnproc=2\nmodel=Test CPU\nkernel=6.1\ngo=go1.26 linux/amd64\nnode=v22\n" +
			"load_start=0.10 0.20 0.30\nseconds=10\nfloor_frame=204\nnote=a test\n" +
			"server_cmd=switchboard -addr X\npeer_cmd=node server.js\nfloor_cmd=floor --conns C\nload_end=0.40 0.50 0.60\n",
		"floor/1000.json":           `{"conns":1000,"rate":20000,"seconds":10,"frame_bytes":204,"writes":200000,"writes_per_s":20000,"writer_cpu_us_per_write":2.5,"writer_cpu_pct":5,"reader_cpu_us_per_write":1,"reader_cpu_pct":2,"read_frames":200000,"behind":false}` + "\n",
		"floor/1000.cmd":            "floor --conns 1000\n",
		"floor/1000.err":            "",
		"points/1000x10/ours.json":  "not json\n" + ours + "\n",
		"points/1000x10/ours.cmd":   "loadgen --conns 1000 --rooms 10\n",
		"points/1000x10/ours.time":  "0.50 0.20 12.00\n",
		"points/1000x10/peer.json":  `{"peer":"socket.io","conns":1000,"rooms":10,"senders":10,"rate":200,"seconds":10,"sent":1990,"delivered":199000,"expected":199100,"deliveries_per_s":19000,"latency_ms":{"p50":2,"p90":6,"p99":10,"max":20},"server_rss_bytes_per_conn":40960,"server_rss_mb":120,"server_cpu_us_per_delivery":40}` + "\n",
		"points/1000x10/peer.cmd":   "node loadgen.js --conns 1000 --rooms 10\n",
		"points/1000x10/peer.time":  "3.00 1.00 8.00\n",
		"points/5000x100/ours.json": strings.ReplaceAll(strings.ReplaceAll(ours, `"conns":1000`, `"conns":5000`), `"rooms":10`, `"rooms":100`),
		"points/5000x100/peer.err":  "starting\nnpm warn x\nError: connect ECONNREFUSED 127.0.0.1:3101\n    at TCPConnectWrap | afterConnect\n",
		"points/README":             "not a point\n",
	})
	got, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Run 2026-11-26 02:00 UTC. **Machine:** Test CPU, 2 cores (nproc), kernel 6.1; go1.26 linux/amd64; Node v22. Load average at start 0.10 0.20 0.30, at end 0.40 0.50 0.60.",
		"> a test\n",
		"| 1000 | 20000 | **2.50** | 1.00 | 5.0 | yes |\n",
		// summary: CPU ratio 10/40, × floor 10/2.5 and 40/2.5, RSS 20/40 KB, p99, lost (the peer's: expected − delivered)
		"| 1000 × 10 | 100 | 200 | 10.00 / 40.00 | **0.25×** | 4.00× | 16.00× | 20.0 / 40.0 | **0.50×** | 5.0 / 10.0 | 0 / 100 |\n",
		"### 1000 connections × 10 rooms (room size 100)\n",
		"| Switchboard | 10.00 | 4.00× | 20.0 | 60 | 1.0 | 5.0 | 9.0 | 20000 | 2000 | 200000 | 0 | 20.0 | 30.0 | 300 |\n",
		// the peer: server CPU % derived (40 µs × 19000/s), its load tool's CPU from time ((3+1)/8)
		"| Socket.io peer | 40.00 | 16.00× | 40.0 | 120 | 2.0 | 10.0 | 20.0 | 19000 | 1990 | 199000 | 100 | 76.0 | 50.0 (whole run) | – |\n",
		"| ratio ours/peer | **0.25×** | | **0.50×** | **0.50×** | **0.50×** | **0.50×** | | **1.05×** | | | | | | |\n",
		"loadgen --conns 1000 --rooms 10\nnode loadgen.js --conns 1000 --rooms 10\n",
		// the failed peer run: the last 3 lines of its stderr, "|" kept out of the table
		"| Socket.io peer | failed: npm warn x Error: connect ECONNREFUSED 127.0.0.1:3101     at TCPConnectWrap / afterConnect |\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if i, j := strings.Index(got, "### 1000 connections"), strings.Index(got, "### 5000 connections"); i < 0 || j < i {
		t.Errorf("points out of order (1000 at %d, 5000 at %d)", i, j)
	}
	if n := strings.Count(got, "| ratio ours/peer |"); n != 1 {
		t.Errorf("%d ratio rows, want 1 (none for the failed point)", n)
	}
	if t.Failed() {
		t.Logf("report:\n%s", got)
	}
}

// TestSplice checks that only the part between the markers is replaced, and that the markers are added to a file
// without them, or to a new file.
func TestSplice(t *testing.T) {
	gen := func(body string) string { return beginMarker + "\n\n" + body + "\n" + endMarker + "\n" }
	for _, tc := range []struct {
		name, old, want string
	}{
		{"replace", "# Benchmarks\n\nnotes before\n\n" + gen("old table\n") + "\nnotes after\n",
			"# Benchmarks\n\nnotes before\n\n" + gen("new table\n") + "\nnotes after\n"},
		{"no markers", "# Benchmarks\n\nhand-written only\n\n\n",
			"# Benchmarks\n\nhand-written only\n\n" + gen("new table\n")},
		{"new file", "", "# Benchmarks\n\n" + gen("new table\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			if tc.old != "" {
				writeFiles(t, filepath.Dir(path), map[string]string{"BENCHMARKS.md": tc.old})
			}
			for run := range 2 { // a second run changes nothing
				if err := splice(path, "new table\n"); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Fatalf("run %d:\n got %q\nwant %q", run+1, got, tc.want)
				}
			}
		})
	}
}
