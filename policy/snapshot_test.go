package policy_test

import (
	"context"
	"testing"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// snapshotStore is a SnapshotStore over fixed rules, at a settable revision.
type snapshotStore struct {
	rules []model.Rule
	rev   int64 // the revision the rules are at
	seen  int64 // the revision of the last Load
}

func (s *snapshotStore) Load(_ context.Context, fn func(model.Rule) error) error {
	for _, r := range s.rules {
		if err := fn(r); err != nil {
			return err
		}
	}
	s.seen = s.rev
	return nil
}

func (s *snapshotStore) Commit(context.Context, *policy.Change) error { return nil }
func (s *snapshotStore) LoadedRevision() int64                        { return s.seen }

// TestApplyCommittedAfterReload: a watcher reads changes 3 (adds a member)
// and 4 (removes it) from the feed; before it applies them, the
// application reloads the engine from the store, at revision 4. The
// changes the watcher then hands over were included in the reload: they
// are ignored, so change 3 does not bring back the member change 4
// removed. A change past the reload applies.
func TestApplyCommittedAfterReload(t *testing.T) {
	ctx := context.Background()
	perm := model.Key{Object: "payable", Action: "read"}
	base := []model.Rule{
		rules.Owner("p1", "e1"),
		rules.RoleDecl("e1", "r1", "Reader", 1, 1),
		rules.Permission("e1", "r1", perm, model.Allowed),
	}
	st := &snapshotStore{rules: base, rev: 2}
	eng, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	add := policy.Change{Revision: 3, Add: []model.Rule{rules.Member("e1", "u1", "r1")}}
	remove := policy.Change{Revision: 4, Remove: add.Add}
	st.rev = 4 // the store now holds changes 3 and 4: no u1
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	req := policy.Request{Subject: model.User("u1"), Entity: "e1", Object: perm.Object, Action: perm.Action}
	for _, ch := range []policy.Change{add, remove, add} {
		if err := eng.ApplyCommitted(ch); err != nil {
			t.Fatal(err)
		}
		if d := eng.Decide(req); d.Allowed {
			t.Fatalf("after the stale change %d: u1 allowed (%v)", ch.Revision, d.Reason)
		}
	}
	next := policy.Change{Revision: 5, Add: add.Add}
	if err := eng.ApplyCommitted(next); err != nil {
		t.Fatal(err)
	}
	if d := eng.Decide(req); !d.Allowed {
		t.Fatalf("after change 5, which the reload did not include: u1 denied (%v)", d.Reason)
	}
}

// TestIgnored: Ignored counts the stored rules the last load could not use
// (malformed, or outside the catalog), and a reload of a clean store
// resets it.
func TestIgnored(t *testing.T) {
	ctx := context.Background()
	good := []model.Rule{rules.Owner("p1", "e1"), rules.RoleDecl("e1", "r1", "Reader", 1, 1)}
	st := &snapshotStore{rules: append(append([]model.Rule(nil), good...),
		rules.Permission("e1", "r1", model.Key{Object: "spaceship", Action: "launch"}, model.Allowed), // outside the catalog
		model.Rule{PType: "g", Values: []string{"user:u1", "team:t1", "entity:e1"}},                   // no such link
		model.Rule{PType: "p", Values: []string{"role:r1", "entity:e1", "payable", "read", "maybe"}},  // no such permission
	)}
	eng, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	if got := eng.Ignored(); got != 3 {
		t.Fatalf("Ignored() = %d, want 3", got)
	}
	if _, err := eng.GetEntity(ctx, "e1"); err != nil {
		t.Fatalf("the usable rules were not loaded: %v", err)
	}
	st.rules = good
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eng.Ignored(); got != 0 {
		t.Fatalf("Ignored() = %d after reloading a clean store, want 0", got)
	}
}
