package policy_test

import (
	"os"
	"sort"
	"strconv"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// checkAgainstCasbin makes n random requests and compares every decision of
// the engine with casbin.Enforce on the same rules.
func checkAgainstCasbin(t testing.TB, w *world, n int) int {
	t.Helper()
	o := newOracle(t, w.eng.Rules())
	for range n {
		r := w.request()
		d := w.eng.Decide(r)
		if d.Err != nil {
			t.Fatalf("Decide(%+v): unexpected error %v", r, d.Err)
		}
		want, wantScope := o.decide(t, r)
		if d.Allowed != want {
			_, why := w.eng.Explain(r)
			t.Fatalf("Decide(%+v) = %v, casbin.Enforce = %v\nengine: %s\nrules:\n%s", r, d.Allowed, want, why, dump(w.eng.Rules()))
		}
		if r.Action == "create" {
			continue // Casbin allows create under allowed_for_own for any owner: its scope is not observable
		}
		scope, err := w.eng.Scope(r.Subject, r.Entity, r.Object, r.Action)
		if err != nil || scope != wantScope {
			t.Fatalf("Scope(%+v) = %v, %v; casbin says %v\nrules:\n%s", r, scope, err, wantScope, dump(w.eng.Rules()))
		}
	}
	return n
}

func dump(rs []model.Rule) string {
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = r.String()
	}
	sort.Strings(lines)
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// TestDifferentialCasbin is the engine's main correctness argument: random
// catalogs, partners, entities, roles, users with and without roles, default
// role changes and deletions, then random requests (owners included); every
// decision must equal casbin.Enforce on the embedded model with the same
// rules. Set GATEHOUSE_DIFF_SEED to replay one world.
func TestDifferentialCasbin(t *testing.T) {
	worlds, perCheck := 250, 100
	if testing.Short() {
		worlds = 25
	}
	first := uint64(1)
	if s := os.Getenv("GATEHOUSE_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		first, worlds = v, 1
	}
	decisions := 0
	for seed := first; seed < first+uint64(worlds); seed++ {
		w := newWorld(t, seed)
		for round := range 4 {
			for range 10 + round*10 {
				w.step()
			}
			decisions += checkAgainstCasbin(t, w, perCheck)
		}
		if t.Failed() {
			t.Fatalf("world seed %d failed (replay with GATEHOUSE_DIFF_SEED=%d)", seed, seed)
		}
	}
	t.Logf("%d decisions, 0 mismatches", decisions)
	if !testing.Short() && decisions < 100000 {
		t.Fatalf("only %d decisions compared; want at least 100,000", decisions)
	}
}

// TestRestartEquivalence stores a random history through a Casbin adapter
// and checks that a new engine on the same adapter has the same rules and
// decides the same.
func TestRestartEquivalence(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		a := newMemAdapter()
		w := newWorld(t, seed, policy.WithAdapter(a))
		for range 60 {
			w.step()
		}
		eng2, err := policy.New(w.ctx, policy.WithCatalog(w.cat), policy.WithAdapter(a))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dump(eng2.Rules()), dump(w.eng.Rules()); got != want {
			t.Fatalf("seed %d: reloaded rules differ\n got:\n%s\nwant:\n%s", seed, got, want)
		}
		if got, want := dump(a.rules()), dump(w.eng.Rules()); got != want {
			t.Fatalf("seed %d: stored rules differ from the engine's\n got:\n%s\nwant:\n%s", seed, got, want)
		}
		for range 300 {
			r := w.request()
			if d1, d2 := w.eng.Decide(r), eng2.Decide(r); d1 != d2 {
				t.Fatalf("seed %d: %+v: %+v before restart, %+v after", seed, r, d1, d2)
			}
		}
	}
}

// FuzzDifferential runs the differential property on worlds made from fuzzed
// seeds and lengths.
func FuzzDifferential(f *testing.F) {
	for _, s := range []uint64{1, 7, 42, 1 << 40} {
		f.Add(s, uint8(30))
	}
	f.Fuzz(func(t *testing.T, seed uint64, steps uint8) {
		w := newWorld(t, seed)
		for range int(steps) {
			w.step()
		}
		checkAgainstCasbin(t, w, 200)
	})
}
