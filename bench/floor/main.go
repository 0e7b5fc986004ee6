// Command floor measures the calibration floor of fan-out on this machine: the CPU one process spends to write one
// pre-framed WebSocket text frame (server→client, unmasked) to a loopback TCP socket, with nothing else around it
// (no hub, no queues, no goroutine per connection, one write per frame). On loopback the writer's CPU also pays
// most of the receiver's TCP path (softirq), so this is the least a server can spend per delivery with one write
// per delivery. Every fan-out figure of bench/compare.sh is also given as a multiple of it.
//
//	floor --conns 1000 --rate 20000 --seconds 10 [--reader-cpus 0]
//
// The writer listens on 127.0.0.1, starts the reader (this binary with --mode read, optionally pinned with
// taskset), accepts its --conns connections, waits a second, then writes --rate frames per second in total,
// round robin over the connections, for --seconds. It prints one JSON line: the writer's utime+stime from
// /proc/self/stat over the window divided by the writes, and the reader's likewise.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const clockTicks = 100 // USER_HZ

type result struct {
	Conns               int      `json:"conns"`
	Rate                float64  `json:"rate"`
	Seconds             float64  `json:"seconds"`
	FrameBytes          int      `json:"frame_bytes"`
	Writes              int64    `json:"writes"`
	WritesPerS          int64    `json:"writes_per_s"`
	WriterCPUUsPerWrite *float64 `json:"writer_cpu_us_per_write"`
	WriterCPUPct        float64  `json:"writer_cpu_pct"`
	ReaderCPUUsPerWrite *float64 `json:"reader_cpu_us_per_write"`
	ReaderCPUPct        *float64 `json:"reader_cpu_pct"`
	ReadFrames          int64    `json:"read_frames"`
	Behind              bool     `json:"behind"` // the writer could not keep the rate: the floor is CPU-bound here
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fail(err)
	}
}

// run parses args and runs the writer (which prints the JSON line to stdout) or the reader.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	mode := fs.String("mode", "write", "write (the measured side; starts the reader) or read")
	conns := fs.Int("conns", 1000, "loopback connections")
	rate := fs.Float64("rate", 20000, "frames per second in total")
	seconds := fs.Float64("seconds", 10, "measured window")
	payload := fs.Int("payload", 200, "payload bytes per frame")
	addr := fs.String("addr", "", "read: the writer's address")
	readerCPUs := fs.String("reader-cpus", "", "write: pin the reader with taskset -c (e.g. 0)")
	_ = fs.Parse(args) // ExitOnError: a bad flag exits with status 2
	if *conns < 1 || *rate <= 0 || *seconds <= 0 || *payload < 0 || *payload > 65535 {
		return errors.New("--conns, --rate and --seconds must be positive, --payload 0..65535")
	}
	if *mode == "read" {
		return read(stdout, *addr, *conns, *payload)
	}
	return write(stdout, *conns, *rate, *seconds, *payload, *readerCPUs)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}

// frame is one server→client text frame: FIN+text, the length (7-bit or 126 + 16-bit), no mask, the payload.
func frame(n int) []byte {
	b := []byte{0x81}
	if n < 126 {
		b = append(b, byte(n))
	} else {
		b = append(b, 126, byte(n>>8), byte(n))
	}
	for i := range n {
		b = append(b, 'a'+byte(i%26))
	}
	return b
}

func write(stdout io.Writer, conns int, rate, seconds float64, payload int, readerCPUs string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{self, "--mode", "read", "--addr", ln.Addr().String(), "--conns", strconv.Itoa(conns), "--payload", strconv.Itoa(payload)}
	if readerCPUs != "" {
		args = append([]string{"taskset", "-c", readerCPUs}, args...)
	}
	reader := exec.Command(args[0], args[1:]...)
	var readerOut strings.Builder
	reader.Stdout, reader.Stderr = &readerOut, os.Stderr
	if err := reader.Start(); err != nil {
		return fmt.Errorf("starting the reader: %w", err)
	}
	defer func() { _ = reader.Process.Kill() }()

	socks := make([]net.Conn, 0, conns)
	accepted := make(chan error, 1)
	go func() {
		for len(socks) < conns {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			socks = append(socks, c)
		}
		accepted <- nil
	}()
	select {
	case err := <-accepted:
		if err != nil {
			return err
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the reader did not open %d connections within a minute", conns)
	}
	time.Sleep(time.Second) // let the connections settle

	f := frame(payload)
	pid := reader.Process.Pid // taskset execs the reader in place, so the pid is the reader's
	w0, err := cpuOf("self")
	if err != nil {
		return err
	}
	r0, rerr := cpuOf(strconv.Itoa(pid))
	t0 := time.Now()
	window := time.Duration(seconds * float64(time.Second))
	var writes int64
	behind := false
	next := 0
	for {
		el := time.Since(t0)
		if el >= window {
			break
		}
		due := int64(rate * el.Seconds())
		if due-writes > int64(rate/10) { // more than 100 ms behind
			behind = true
		}
		for writes < due {
			if _, err := socks[next].Write(f); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			writes++
			if next++; next == len(socks) {
				next = 0
			}
		}
		time.Sleep(time.Millisecond)
	}
	wall := time.Since(t0).Seconds()
	w1, err := cpuOf("self")
	if err != nil {
		return err
	}
	r1, rerr2 := cpuOf(strconv.Itoa(pid))
	for _, c := range socks {
		c.Close()
	}
	if err := reader.Wait(); err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	var rr struct {
		Frames int64 `json:"frames"`
	}
	_ = json.Unmarshal([]byte(readerOut.String()), &rr)

	res := result{Conns: conns, Rate: rate, Seconds: seconds, FrameBytes: len(f), Writes: writes,
		WritesPerS: int64(math.Round(float64(writes) / wall)), WriterCPUPct: round2((w1 - w0) / wall * 100),
		ReadFrames: rr.Frames, Behind: behind}
	if writes > 0 {
		v := round2((w1 - w0) * 1e6 / float64(writes))
		res.WriterCPUUsPerWrite = &v
		if rerr == nil && rerr2 == nil {
			v := round2((r1 - r0) * 1e6 / float64(writes))
			p := round2((r1 - r0) / wall * 100)
			res.ReaderCPUUsPerWrite, res.ReaderCPUPct = &v, &p
		}
	}
	line, _ := json.Marshal(res)
	_, err = fmt.Fprintln(stdout, string(line))
	return err
}

// read opens the connections and reads everything until the writer closes them, then prints the frame count.
func read(stdout io.Writer, addr string, conns, payload int) error {
	if addr == "" {
		return errors.New("--mode read needs --addr")
	}
	var bytes atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := net.Dialer{}
	for i := range conns {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			br := bufio.NewReaderSize(c, 4096)
			buf := make([]byte, 4096)
			for {
				n, err := br.Read(buf)
				bytes.Add(int64(n))
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						fmt.Fprintln(os.Stderr, "floor reader:", err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	_, err := fmt.Fprintf(stdout, "{\"frames\":%d}\n", bytes.Load()/int64(len(frame(payload))))
	return err
}

// cpuOf is utime+stime in seconds from /proc/<pid>/stat.
func cpuOf(pid string) (float64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndex(s, ") ")
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%s/stat", pid)
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clockTicks, nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
