package rtc

import (
	"context"
	"testing"
)

func benchTransfer(b *testing.B, size int64) {
	var all []float64
	for b.Loop() {
		res, err := MeasureTransfer(context.Background(), MeasureOptions{Size: size, Runs: 1, PingEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, res.RunsMBps...)
	}
	b.SetBytes(size)
	var sum float64
	for _, v := range all {
		sum += v
	}
	b.ReportMetric(sum/float64(len(all)), "MB/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTransfer16MiB: each iteration is a new pair of managers on
// 127.0.0.1 (connection set-up excluded) sending one 16 MiB object.
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
