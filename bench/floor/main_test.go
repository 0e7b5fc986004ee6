package main

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readerEnv makes the test binary act as floor itself: the writer starts its reader as os.Executable(), which in a
// test is this binary.
const readerEnv = "BENCH_FLOOR_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(readerEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestFloor runs the writer in-process for 1 s over 20 loopback connections (reader unpinned) and checks its JSON
// line: every write reached the reader, and the writer's CPU per write is positive.
func TestFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("floor: runs for a second; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("floor: reads CPU time from /proc")
	}
	t.Setenv(readerEnv, "1")
	var out bytes.Buffer
	start := time.Now()
	if err := run([]string{"--conns", "20", "--rate", "4000", "--seconds", "1"}, &out); err != nil {
		t.Fatalf("floor: %v", err)
	}
	t.Logf("floor (%s): %s", time.Since(start).Round(time.Millisecond), out.String())
	var res struct {
		Conns               int      `json:"conns"`
		FrameBytes          int      `json:"frame_bytes"`
		Writes              int64    `json:"writes"`
		WritesPerS          int64    `json:"writes_per_s"`
		WriterCPUUsPerWrite *float64 `json:"writer_cpu_us_per_write"`
		ReaderCPUUsPerWrite *float64 `json:"reader_cpu_us_per_write"`
		ReadFrames          int64    `json:"read_frames"`
		Behind              bool     `json:"behind"`
	}
	if strings.Count(out.String(), "\n") != 1 || json.Unmarshal(out.Bytes(), &res) != nil {
		t.Fatalf("want one line of a JSON object on stdout, got %q", out.String())
	}
	if res.Conns != 20 || res.FrameBytes != 204 {
		t.Errorf("conns %d, frame_bytes %d; want 20 and 204 (4 header bytes + 200)", res.Conns, res.FrameBytes)
	}
	if res.Writes < 2000 { // 4000 due in the window; even a slow writer under -race makes half
		t.Errorf("writes %d in 1 s at 4000/s, want at least 2000", res.Writes)
	}
	if res.ReadFrames != res.Writes {
		t.Errorf("the reader read %d frames of %d written", res.ReadFrames, res.Writes)
	}
	if res.WriterCPUUsPerWrite == nil || *res.WriterCPUUsPerWrite <= 0 {
		t.Errorf("writer_cpu_us_per_write %v, want > 0", res.WriterCPUUsPerWrite)
	}
	if res.ReaderCPUUsPerWrite == nil {
		t.Error("reader_cpu_us_per_write is null: the reader's /proc stat was not read")
	}
	if res.Behind {
		t.Logf("behind: the writer fell behind the rate (a busy machine?)")
	}
}
