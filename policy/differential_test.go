package policy_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// checkAgainstCasbin makes n random requests and compares every decision of
// the engine with casbin.Enforce on the same rules.
func checkAgainstCasbin(t testing.TB, w *world, n int) int {
	t.Helper()
	return checkDecisions(t, w, w.eng.Rules(), n)
}

// checkDecisions makes n random requests and compares every decision of
// the engine with casbin.Enforce on rs.
func checkDecisions(t testing.TB, w *world, rs []model.Rule, n int) int {
	t.Helper()
	o := newOracle(t, rs)
	for i := range n {
		r := w.request()
		d := w.eng.Decide(&r)
		if d.Err != nil {
			t.Fatalf("Decide(%+v): unexpected error %v", r, d.Err)
		}
		want, wantScope := o.decide(t, r)
		if d.Allowed != want {
			_, why := w.eng.Explain(&r)
			t.Fatalf("Decide(%+v) = %v, casbin.Enforce = %v\nengine: %s\nrules:\n%s", r, d.Allowed, want, why, dump(rs))
		}
		if r.Action == "create" {
			continue // Casbin allows create under allowed_for_own for any owner: its scope is not observable
		}
		scope, err := w.eng.Scope(r.Subject, r.Entity, r.Object, r.Action)
		if err != nil || scope != wantScope {
			t.Fatalf("Scope(%+v) = %v, %v; casbin says %v\nrules:\n%s", r, scope, err, wantScope, dump(rs))
		}
		if i%8 == 0 {
			// The escalation guard reads what a subject holds from the
			// index by itself: it may grant exactly what Casbin's scope
			// covers.
			for _, p := range []model.Permission{model.AllowedForOwn, model.Allowed} {
				err := w.eng.CheckGrant(r.Subject, r.Entity, model.Permissions{{Object: r.Object, Action: r.Action}: p})
				if ok := model.ScopeOf(p) <= wantScope; ok != (err == nil) {
					t.Fatalf("CheckGrant(%v, %s, %s.%s=%s) = %v; casbin's scope %v\nrules:\n%s", r.Subject, r.Entity, r.Object, r.Action, p, err, wantScope, dump(rs))
				}
			}
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

// TestDifferentialManyRoles is TestDifferentialCasbin on entities with more
// roles than one word of the index's permission columns holds (16): their
// permissions take several words a catalog slot, which the worlds above,
// of a few roles an entity, do not reach. Each world gets one or two
// entities of 17 to 56 roles, then random changes (role deletions, users,
// default roles among them) and checks.
func TestDifferentialManyRoles(t *testing.T) {
	decisions := 0
	for seed := uint64(1); seed <= 12; seed++ {
		w := newWorld(t, seed)
		for e := range 1 + w.rng.IntN(2) {
			id := model.EntityID(xid(e + 1))
			if _, err := w.eng.CreateEntity(w.ctx, pick(w.rng, w.partners), id); err != nil {
				t.Fatal(err)
			}
			w.entities = append(w.entities, id)
			for i := range 17 + w.rng.IntN(40) {
				r, err := w.eng.CreateRole(w.ctx, id, policy.RoleSpec{Name: fmt.Sprintf("role %d", i), Permissions: w.randomPerms()})
				if err != nil {
					t.Fatal(err)
				}
				w.roles = append(w.roles, r.ID)
			}
		}
		for round := range 3 {
			for range 20 + round*20 {
				w.step()
			}
			decisions += checkAgainstCasbin(t, w, 300)
		}
		if t.Failed() {
			t.Fatalf("world seed %d failed", seed)
		}
	}
	t.Logf("%d decisions, 0 mismatches", decisions)
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
			if d1, d2 := w.eng.Decide(&r), eng2.Decide(&r); d1 != d2 {
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

// TestDifferentialLinkSets checks the engine on rules it never writes but a
// store may hold, put there by Casbin's tools or by hand: a member linked to
// several roles, or to a role and also without one (the default roles
// apply), several default roles, several owners, a user in two entities.
// Casbin takes the union of such links. Every decision must equal
// casbin.Enforce on the store's rules, before and after further management
// calls, and the engine's rules must stay the store's: a call that moves or
// removes a member, a default role or an entity removes every link of it.
func TestDifferentialLinkSets(t *testing.T) {
	worlds := 120
	if testing.Short() {
		worlds = 15
	}
	decisions, extra := 0, 0
	for seed := uint64(1); seed <= uint64(worlds); seed++ {
		a := newMemAdapter()
		w := newWorld(t, seed, policy.WithAdapter(a))
		for range 30 {
			w.step()
		}
		for round := range 4 {
			// Half the rounds reload the store, half hand the rules over
			// as another replica's committed change (the index's
			// incremental path).
			added := w.addLinks(t, a, 1+w.rng.IntN(6))
			extra += len(added)
			if round%2 == 0 {
				if err := w.eng.Reload(w.ctx); err != nil {
					t.Fatal(err)
				}
			} else if err := w.eng.ApplyCommitted(policy.Change{Add: added}); err != nil {
				t.Fatal(err)
			}
			decisions += checkStore(t, w, a, 150)
			for range 15 {
				w.step()
			}
			decisions += checkStore(t, w, a, 150)
		}
		if t.Failed() {
			t.Fatalf("world seed %d failed", seed)
		}
	}
	t.Logf("%d links added behind the engine, %d decisions, 0 mismatches", extra, decisions)
}

// checkStore checks that the engine's rules are the store's and that it
// decides n random requests as casbin.Enforce does on the store's rules.
func checkStore(t *testing.T, w *world, a *memAdapter, n int) int {
	t.Helper()
	if got, want := dump(w.eng.Rules()), dump(a.rules()); got != want {
		t.Fatalf("engine rules differ from the store's\n got:\n%s\nwant:\n%s", got, want)
	}
	return checkDecisions(t, w, a.rules(), n)
}

// addLinks writes up to n random links straight into the store, as another
// tool would, and returns those it wrote that the store did not hold: role
// links, links without a role, default roles and owners, on random
// entities, users, roles (of any entity, or deleted) and partners.
func (w *world) addLinks(t *testing.T, a *memAdapter, n int) []model.Rule {
	t.Helper()
	held := map[string]bool{}
	for _, r := range a.rules() {
		held[r.String()] = true
	}
	var added []model.Rule
	for range n {
		ent := pick(w.rng, w.entities)
		var r model.Rule
		switch w.rng.IntN(4) {
		case 0:
			r = rules.Member(ent, pick(w.rng, w.users), pick(w.rng, w.roles))
		case 1:
			r = rules.Member(ent, pick(w.rng, w.users), "")
		case 2:
			r = rules.DefaultRole(ent, pick(w.rng, w.roles))
		default:
			r = rules.Owner(pick(w.rng, w.partners), ent)
		}
		if ent == "" || slices.Contains(r.Values, "user:") || slices.Contains(r.Values, "role:") {
			continue // nothing to link yet
		}
		if held[r.String()] {
			continue
		}
		held[r.String()] = true
		if err := a.AddPolicy(r.Section(), r.PType, r.Values); err != nil {
			t.Fatal(fmt.Errorf("adding %s: %w", r, err))
		}
		added = append(added, r)
	}
	return added
}

// FuzzDifferentialLinkSets runs TestDifferentialLinkSets's property on
// worlds made from fuzzed seeds and lengths: links written behind the
// engine, handed over as a committed change or by a reload.
func FuzzDifferentialLinkSets(f *testing.F) {
	for _, s := range []uint64{1, 7, 42} {
		f.Add(s, uint8(30), uint8(6), false)
	}
	f.Fuzz(func(t *testing.T, seed uint64, steps, links uint8, reload bool) {
		a := newMemAdapter()
		w := newWorld(t, seed, policy.WithAdapter(a))
		for range int(steps) {
			w.step()
		}
		added := w.addLinks(t, a, int(links%16))
		if reload {
			if err := w.eng.Reload(w.ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := w.eng.ApplyCommitted(policy.Change{Add: added}); err != nil {
			t.Fatal(err)
		}
		checkStore(t, w, a, 100)
		for range int(steps % 16) {
			w.step()
		}
		checkStore(t, w, a, 100)
	})
}
