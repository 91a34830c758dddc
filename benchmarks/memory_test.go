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

// BenchmarkMemoryPages measures the machine's page walks: BenchmarkMemoryFloor's
// chain of dependent reads, through one 64-byte line in each of N 4 KiB
// pages (a different line in each, so that the lines do not compete for
// the same cache sets). The bytes read stay small (256 KB at 4,096 pages);
// the time rises where the pages outnumber what the translation caches
// hold, and every read then waits for a page walk as well.
func BenchmarkMemoryPages(b *testing.B) {
	for _, pages := range []int{512, 1536, 2048, 4096, 8192} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			const perPage = 4096 / 8 // uint64s a page
			at := func(p int) int { return p*perPage + p%64*8 }
			next := make([]uint64, pages*perPage)
			order := rand.New(rand.NewPCG(1, 2)).Perm(pages)
			for k, p := range order {
				next[at(p)] = uint64(at(order[(k+1)%pages]))
			}
			i := uint64(at(order[0]))
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
