//go:build !js

// Command rtcbench measures object transfers between two rtc managers of one
// process on 127.0.0.1 and prints the figures as JSON (docs/transport.md).
//
//	go run ./shared/rtc/internal/rtcbench -size 16777216 -runs 10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowercdn/flower/shared/rtc"
)

func main() {
	size := flag.Int64("size", 16<<20, "object size in bytes")
	runs := flag.Int("runs", 10, "transfers")
	fresh := flag.Bool("fresh", false, "new connection for every run")
	sockbuf := flag.Int("sockbuf", 0, "UDP socket buffer to ask for (0: default 8 MiB, -1: kernel default)")
	window := flag.Uint("sctp-window", 0, "SCTP receive window (0: sized from the socket buffer)")
	hw := flag.Uint64("high-water", 0, "sender high-water mark (0: default)")
	warm := flag.Int64("warmup", 0, "bytes sent unmeasured on each new connection first")
	rwin := flag.Int64("recv-window", 0, "per-transfer receive window (0: default)")
	rto := flag.Duration("rto-max", 0, "SCTP RTO cap (0: pion's)")
	ping := flag.Duration("ping", 2*time.Millisecond, "control message interval during transfers (<0: none)")
	prof := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rtcbench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "rtcbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	cfg := rtc.LoopbackConfig()
	cfg.Native.SocketBuffer = *sockbuf
	cfg.Native.SCTPReceiveBuffer = uint32(*window)
	cfg.Native.SCTPRTOMax = *rto
	cfg.HighWater = *hw
	cfg.ReceiveWindow = *rwin
	drops0 := udpRcvbufErrors()
	cpu0 := cpuTime()
	res, err := rtc.MeasureTransfer(context.Background(), rtc.MeasureOptions{
		Size: *size, Runs: *runs, FreshConn: *fresh, WarmUp: *warm, PingEvery: *ping, Config: &cfg,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtcbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	cpu := cpuTime() - cpu0
	out := struct {
		rtc.MeasureResult
		CPUmsPerMB float64 `json:"cpu_ms_per_mb"`     // process CPU time (both peers) per 10^6 bytes moved
		UDPDrops   int64   `json:"udp_rcvbuf_errors"` // datagrams the kernel dropped for a full socket buffer (whole host)
	}{res, cpu.Seconds() * 1000 / (float64(*size) * float64(*runs) / 1e6), udpRcvbufErrors() - drops0}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "rtcbench:", err)
		os.Exit(1)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// udpRcvbufErrors reads the host's UDP RcvbufErrors counter (-1 if unknown).
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return -1
				}
				return v
			}
		}
	}
	return -1
}
