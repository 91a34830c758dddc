package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMemoryFloor measures the machine, not Gatehouse: the time of one
// random read that depends on the read before it, in a buffer of MB
// mebibytes (a chain through every 64-byte line, in random order). It is
// the floor under any lookup that must fetch a line it has not seen lately
// from a table of that size, which is what a decision does once the index
// outgrows the caches (at 1,000,000 rules a decision's user lookup reads one
// line from about 12 MB of tables).
func BenchmarkMemoryFloor(b *testing.B) {
	for _, mb := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("MB=%d", mb), func(b *testing.B) {
			const line = 64 / 8 // uint64s per cache line
			lines := mb << 20 / 64
			next := make([]uint64, lines*line)
			order := rand.New(rand.NewPCG(1, 2)).Perm(lines)
			for k, l := range order {
				next[l*line] = uint64(order[(k+1)%lines] * line)
			}
			i := uint64(0)
			b.ResetTimer()
			for b.Loop() {
				i = next[i]
			}
			if i >= uint64(len(next)) {
				b.Fatal("chain left the buffer")
			}
		})
	}
}
