package main

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const clockTicks = 100 // USER_HZ on Linux, as the peer's loadgen assumes

// procStats is what the peer's loadgen reads from /proc of the server: utime+stime in seconds and VmRSS in bytes.
type procStats struct {
	cpu float64
	rss int64
	ok  bool
}

var vmRSS = regexp.MustCompile(`VmRSS:\s+(\d+)`)

// readProc reads /proc/<pid>/stat and status exactly like the peer's serverStats; pid 0 gives !ok.
func readProc(pid int) (procStats, error) {
	if pid == 0 {
		return procStats{}, nil
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStats{}, fmt.Errorf("server stats: %w", err)
	}
	// The command name may hold spaces and parentheses: the fields start after the last ") ".
	s := string(stat)
	i := strings.LastIndex(s, ") ")
	if i < 0 {
		return procStats{}, fmt.Errorf("server stats: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return procStats{}, fmt.Errorf("server stats: short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStats{}, fmt.Errorf("server stats: %w", err)
	}
	m := vmRSS.FindSubmatch(status)
	if m == nil {
		return procStats{}, fmt.Errorf("server stats: no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return procStats{cpu: (utime + stime) / clockTicks, rss: kb * 1024, ok: true}, nil
}

// mustProc is readProc for the measurement points, summed over every instance (--pid and --also-pid): a server
// that has gone away ends the run.
func mustProc(cfg config) procStats {
	var sum procStats
	for _, pid := range append([]int{cfg.pid}, cfg.alsoPIDs...) {
		s, err := readProc(pid)
		if err != nil {
			fatalf("%v (is --pid the server's pid, and is it still running?)", err)
		}
		sum.cpu += s.cpu
		sum.rss += s.rss
		sum.ok = sum.ok || s.ok
	}
	return sum
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// histogram records durations in microseconds with under 1 % error (log-linear buckets, 128 per power of two).
// It is safe for concurrent use; with the tool pinned to one core the lock is never contended.
type histogram struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	max    uint64
}

const subBuckets = 128

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - 8 // keep the top 8 bits: m in [128, 256)
	m := v >> uint(shift)
	return subBuckets + shift*subBuckets + int(m-subBuckets)
}

// bucketValue is the middle of a bucket.
func bucketValue(b int) float64 {
	if b < subBuckets {
		return float64(b)
	}
	shift := (b - subBuckets) / subBuckets
	m := uint64(b-subBuckets)%subBuckets + subBuckets
	lo := m << uint(shift)
	return float64(lo) + float64(uint64(1)<<uint(shift)-1)/2
}

// Record adds one sample; negative durations (clock steps) count as zero.
func (h *histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	b := bucketOf(us)
	h.mu.Lock()
	if b >= len(h.counts) {
		n := make([]uint64, b+1)
		copy(n, h.counts)
		h.counts = n
	}
	h.counts[b]++
	h.n++
	if us > h.max {
		h.max = us
	}
	h.mu.Unlock()
}

// latencyMS is the peer's latency_ms object.
type latencyMS struct {
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
	P99 *float64 `json:"p99"`
	Max *float64 `json:"max"`
}

// Summary gives p50/p90/p99/max in milliseconds; the percentile is the sample at rank floor(p/100·n), as the
// peer computes it on its sorted array. Without samples every field is null (the peer prints null for NaN).
func (h *histogram) Summary() latencyMS {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return latencyMS{}
	}
	pct := func(p float64) *float64 {
		rank := min(h.n-1, uint64(math.Floor(p/100*float64(h.n))))
		var seen uint64
		for b, c := range h.counts {
			seen += c
			if seen > rank {
				v := min(bucketValue(b), float64(h.max))
				return ms(v)
			}
		}
		return ms(float64(h.max))
	}
	return latencyMS{P50: pct(50), P90: pct(90), P99: pct(99), Max: ms(float64(h.max))}
}

func ms(us float64) *float64 {
	v := math.Round(us/10) / 100 // µs → ms with two decimals
	return &v
}

// round2 rounds to two decimals, like the peer's toFixed(2).
func round2(v float64) float64 { return math.Round(v*100) / 100 }
