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
}

func (s *snapshotStore) Load(ctx context.Context, fn func(model.Rule) error) error {
	_, err := s.LoadSnapshot(ctx, fn)
	return err
}

func (s *snapshotStore) LoadSnapshot(_ context.Context, fn func(model.Rule) error) (int64, error) {
	for _, r := range s.rules {
		if err := fn(r); err != nil {
			return 0, err
		}
	}
	return s.rev, nil
}

func (s *snapshotStore) Commit(context.Context, *policy.Change) error { return nil }

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
	if rev, ok := eng.LoadedRevision(); rev != 4 || !ok || eng.Revision() != 4 {
		t.Fatalf("after a reload at revision 4: LoadedRevision %d, %v; Revision %d", rev, ok, eng.Revision())
	}
	st.rev = 1 // the database was reset: the engine's revision goes back with it
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if rev, _ := eng.LoadedRevision(); rev != 1 || eng.Revision() != 1 {
		t.Fatalf("after a reload at revision 1: LoadedRevision %d, Revision %d", rev, eng.Revision())
	}
	st.rev = 4
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	req := policy.Request{Subject: model.User("u1"), Entity: "e1", Object: perm.Object, Action: perm.Action}
	for _, ch := range []policy.Change{add, remove, add} {
		if err := eng.ApplyCommitted(ch); err != nil {
			t.Fatal(err)
		}
		if d := eng.Decide(&req); d.Allowed {
			t.Fatalf("after the stale change %d: u1 allowed (%v)", ch.Revision, d.Reason)
		}
	}
	next := policy.Change{Revision: 5, Add: add.Add}
	if err := eng.ApplyCommitted(next); err != nil {
		t.Fatal(err)
	}
	if d := eng.Decide(&req); !d.Allowed {
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

// numberingStore is a snapshotStore that numbers the changes committed to it.
type numberingStore struct{ snapshotStore }

func (s *numberingStore) Commit(_ context.Context, ch *policy.Change) error {
	s.rev++
	ch.Revision = s.rev
	return nil
}

// TestDeferredApplyAfterReload: a change committed under WithDeferredApply
// (revision 3) is published only after a reload that includes it and a
// later change of another replica that undid it (revision 4). The late
// publication must not apply it again: the watcher, handing over
// revision 4 afterwards, is ignored as included in the reload, so the
// replay would stay.
func TestDeferredApplyAfterReload(t *testing.T) {
	ctx := context.Background()
	perm := model.Key{Object: "payable", Action: "read"}
	st := &numberingStore{snapshotStore{rules: []model.Rule{rules.Owner("p1", "e1"),
		rules.RoleDecl("e1", "r1", "Reader", 1, 1), rules.Permission("e1", "r1", perm, model.Allowed)}, rev: 2}}
	eng, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	var publish func()
	dctx := policy.WithDeferredApply(ctx, func(apply func()) { publish = apply })
	if _, err := eng.AddUser(dctx, "e1", "u1", "r1"); err != nil { // revision 3
		t.Fatal(err)
	}
	st.rev = 4 // another replica removed u1; the store's rules never had it
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	publish()
	if err := eng.ApplyCommitted(policy.Change{Revision: 4, Remove: []model.Rule{rules.Member("e1", "u1", "r1")}}); err != nil {
		t.Fatal(err)
	}
	if d := eng.Decide(&policy.Request{Subject: model.User("u1"), Entity: "e1", Object: perm.Object, Action: perm.Action}); d.Allowed {
		t.Fatalf("u1, removed at revision 4, is allowed (%v)", d.Reason)
	}
}

// TestGrantorRemovesExtraLink: a member linked (by rules made elsewhere)
// to its role and to a role of no rule of the entity can be removed by a
// grantor that holds its role: the second link takes nothing away.
func TestGrantorRemovesExtraLink(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	clerk, err := eng.CreateRole(ctx, "e1", policy.RoleSpec{Name: "Clerk", Permissions: model.Permissions{
		{Object: "payable", Action: "read"}: model.Allowed, {Object: "entity_user", Action: "delete"}: model.Allowed}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []model.UserID{"g1", "u1"} {
		if _, err := eng.AddUser(ctx, "e1", u, clerk.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.ApplyCommitted(policy.Change{Add: []model.Rule{rules.Member("e1", "u1", "ghost")}}); err != nil {
		t.Fatal(err)
	}
	if err := eng.RemoveUser(policy.WithGrantor(ctx, model.User("g1")), "e1", "u1"); err != nil {
		t.Fatalf("RemoveUser by a grantor holding u1's role: %v", err)
	}
	if _, err := eng.GetUser(ctx, "e1", "u1"); err == nil {
		t.Fatal("u1 is still a member")
	}
}

// TestDecideMultiRoleNoAlloc: a member that reaches several roles (rules
// made elsewhere) is decided on the slower path, still without
// allocating, and gets the best of its roles.
func TestDecideMultiRoleNoAlloc(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read, approve := model.Key{Object: "payable", Action: "read"}, model.Key{Object: "payable", Action: "approve"}
	if _, err := eng.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	r1, err := eng.CreateRole(ctx, "e1", policy.RoleSpec{Name: "Reader", Permissions: model.Permissions{read: model.Allowed}})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := eng.CreateRole(ctx, "e1", policy.RoleSpec{Name: "Approver", Permissions: model.Permissions{approve: model.AllowedForOwn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddUser(ctx, "e1", "u1", r1.ID); err != nil {
		t.Fatal(err)
	}
	if err := eng.ApplyCommitted(policy.Change{Add: []model.Rule{rules.Member("e1", "u1", r2.ID), rules.Member("e1", "u1", "")}}); err != nil {
		t.Fatal(err)
	}
	req := policy.Request{Subject: model.User("u1"), Entity: "e1", Object: approve.Object, Action: approve.Action, Owner: model.User("u1")}
	if d := eng.Decide(&req); !d.Allowed || d.Role != r2.ID || d.Scope != model.ScopeOwn {
		t.Fatalf("Decide = %+v; want allowed on its own by %s", d, r2.ID)
	}
	if n := testing.AllocsPerRun(100, func() { eng.Decide(&req) }); n != 0 {
		t.Fatalf("Decide for a member with several roles: %v allocations", n)
	}
}
