package sim

import (
	"context"
	"testing"
)

// BenchmarkFlower10k runs Flower-CDN alone on 10,000 peers with churn.
func BenchmarkFlower10k(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Peers = 10000
	cfg.Queries = 200000
	cfg.Systems = []string{SysFlower}
	for i := 0; i < b.N; i++ {
		if _, err := Run(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
}
