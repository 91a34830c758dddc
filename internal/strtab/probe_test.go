package strtab

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// probes returns how many slots a lookup of key (present) visits.
func (t *Table) probes(key string) int {
	slot, _, ok := t.Find(key)
	if !ok {
		panic("probes: key not in table")
	}
	return int((uint64(slot)-Hash(key))&uint64(t.mask)) + 1
}

// TestProbeLength checks that ids differing in a few digits, as generated
// ids do, spread over the table. The hash is seeded per process, so the
// test averages over 50 fixed seeds: one seed can be unlucky with 10 keys.
func TestProbeLength(t *testing.T) {
	defer func(old uint64) { seed = old }(seed)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, shape := range []string{"user-%06d-%03d", "%08x-0000-4000-8000-000000000000"} {
		for _, n := range []int{10, 200, 2000} {
			total, worst, slots := 0, 0, 0
			for range 50 {
				seed = rng.Uint64() | 1
				b := New(n)
				keys := make([]string, n)
				for i := range keys {
					if shape[0] == 'u' {
						keys[i] = fmt.Sprintf(shape, 77, i)
					} else {
						keys[i] = fmt.Sprintf(shape, i)
					}
					b.Set(keys[i], uint32(i))
				}
				tab := b.Table()
				slots = tab.Slots()
				for _, k := range keys {
					p := tab.probes(k)
					total += p
					worst = max(worst, p)
				}
			}
			mean := float64(total) / float64(50*n)
			t.Logf("%s n=%d slots=%d mean=%.2f worst=%d", shape, n, slots, mean, worst)
			if 4*n > 3*slots {
				t.Errorf("n=%d: %d slots, load above 3/4", n, slots)
			}
			// Linear probing at load 3/4 expects 2.5 probes for a hit; a
			// weak hash on these near-identical keys would give far more.
			if mean > 2.5 || worst > 60 {
				t.Errorf("%s n=%d: mean %.2f, worst %d probes: the hash clusters", shape, n, mean, worst)
			}
		}
	}
}
