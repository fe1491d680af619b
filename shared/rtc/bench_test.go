package rtc

import (
	"context"
	"testing"
)

// benchTransfer sends b.N objects over one connection between two managers
// on 127.0.0.1 (set-up excluded) and reports the median and minimum MB/s
// (10^6 bytes/s) of the runs. Run with -benchtime 10x or more.
func benchTransfer(b *testing.B, size int64) {
	b.ReportAllocs()
	res, err := MeasureTransfer(context.Background(), MeasureOptions{Size: size, Runs: b.N, PingEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.MedianMBps, "MB/s")
	b.ReportMetric(res.MinMBps, "min-MB/s")
	b.ReportMetric(float64(res.SCTPT3Timeouts), "sctp-timeouts")
}

// BenchmarkTransfer16MiB: go test -run '^$' -bench Transfer -benchtime 10x ./shared/rtc
func BenchmarkTransfer16MiB(b *testing.B) { benchTransfer(b, 16<<20) }

func BenchmarkTransfer1MiB(b *testing.B) { benchTransfer(b, 1<<20) }

func TestMeasureTransfer(t *testing.T) {
	noLeaks(t)
	res, err := MeasureTransfer(context.Background(), MeasureOptions{Size: 2 << 20, Runs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RunsMBps) != 2 || res.MedianMBps <= 0 || res.Pings == 0 {
		t.Fatalf("%+v", res)
	}
}
