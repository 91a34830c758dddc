package policytest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Matrix returns entity's access matrix as text: for every member (sorted),
// every object type and every action, what the member may do: "all", "own"
// (allowed_for_own: own objects, new objects, lists filtered by creator) or
// "-". Kept as a golden file (see [Golden]), it makes every change in access
// show up in review.
func Matrix(ctx context.Context, eng *policy.Engine, entity model.EntityID) (string, error) {
	en, err := eng.GetEntity(ctx, entity)
	if err != nil {
		return "", err
	}
	users, err := eng.ListUsers(ctx, entity)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "entity %s (partner %s, default role %s)\n", en.ID, en.Partner, orNone(string(en.DefaultRole)))
	cat := eng.Catalog()
	for _, u := range users {
		fmt.Fprintf(&b, "user %s (role %s)\n", u.ID, orNone(string(u.Role)))
		for _, o := range cat.ObjectTypes() {
			fmt.Fprintf(&b, "  %-24s", o)
			for _, a := range cat.Actions(o) {
				s, _ := eng.Scope(model.User(u.ID), entity, o, a)
				fmt.Fprintf(&b, " %s=%s", a, scopeMark(s))
			}
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func scopeMark(s model.Scope) string {
	if s == model.ScopeNone {
		return "-"
	}
	return s.String()
}

// AccessChange is one (user, object type, action) whose access a change
// would move.
type AccessChange struct {
	Entity model.EntityID
	User   model.UserID
	Key    model.Key
	Before model.Scope
	After  model.Scope
}

// String returns e.g. "acme carol payable.approve: - -> all (gains)".
func (c AccessChange) String() string {
	verb := "gains"
	if c.After < c.Before {
		verb = "loses"
	}
	return fmt.Sprintf("%s %s %s: %s -> %s (%s)", c.Entity, c.User, c.Key, scopeMark(c.Before), scopeMark(c.After), verb)
}

// WhatIf returns what the steps would change in the access of entity's
// members, without changing eng: they run on an in-memory copy. A member
// that a step removes loses everything it had.
func WhatIf(ctx context.Context, eng *policy.Engine, entity model.EntityID, steps ...Step) ([]AccessChange, error) {
	cp, err := policy.New(ctx, policy.WithCatalog(eng.Catalog()), policy.WithStore(rulesStore(eng.Rules())))
	if err != nil {
		return nil, err
	}
	before, err := scopes(ctx, eng, entity)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		if s.Entity == "" {
			s.Entity = entity
		}
		s.Error = ""
		if err := s.apply(ctx, cp); err != nil {
			return nil, err
		}
	}
	after, err := scopes(ctx, cp, entity)
	if err != nil && len(after) != 0 {
		return nil, err
	}
	var out []AccessChange
	for k, b := range before {
		if a := after[k]; a != b {
			out = append(out, AccessChange{Entity: entity, User: k.user, Key: k.key, Before: b, After: a})
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok && a != model.ScopeNone {
			out = append(out, AccessChange{Entity: entity, User: k.user, Key: k.key, After: a})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

type userKey struct {
	user model.UserID
	key  model.Key
}

func scopes(ctx context.Context, eng *policy.Engine, entity model.EntityID) (map[userKey]model.Scope, error) {
	users, err := eng.ListUsers(ctx, entity)
	if err != nil {
		return map[userKey]model.Scope{}, err
	}
	out := map[userKey]model.Scope{}
	for _, u := range users {
		for _, k := range eng.Catalog().Keys() {
			s, _ := eng.Scope(model.User(u.ID), entity, k.Object, k.Action)
			out[userKey{u.ID, k}] = s
		}
	}
	return out, nil
}

// rulesStore serves a fixed set of rules to a new engine and keeps its
// changes in memory.
type rulesStore []model.Rule

func (s rulesStore) Load(ctx context.Context, fn func(model.Rule) error) error {
	for _, r := range s {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (rulesStore) Commit(context.Context, *policy.Change) error { return nil }

// UpdateEnv is the environment variable that makes [Golden] rewrite golden
// files: GATEHOUSE_UPDATE_GOLDEN=1 go test ./...
const UpdateEnv = "GATEHOUSE_UPDATE_GOLDEN"

// Updating reports whether [Golden] rewrites golden files instead of
// comparing with them: when the test binary defines a boolean -update flag
// and it is set, or when the environment variable [UpdateEnv] is true.
//
// Package policytest does not define -update itself: a library that
// registers a flag at init makes every test binary importing it panic
// ("flag redefined: update") when the test defines its own -update. A test
// package that wants "go test -update" declares the flag:
//
//	var _ = flag.Bool("update", false, "rewrite golden files")
func Updating() bool {
	if f := flag.Lookup("update"); f != nil {
		if b, err := strconv.ParseBool(f.Value.String()); err == nil && b {
			return true
		}
	}
	b, _ := strconv.ParseBool(os.Getenv(UpdateEnv))
	return b
}

// Golden compares got with the golden file at path; when [Updating] (run
// the test with -update, if the test package defines that flag, or with
// GATEHOUSE_UPDATE_GOLDEN=1) it writes got there instead.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if Updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update or GATEHOUSE_UPDATE_GOLDEN=1 to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update or GATEHOUSE_UPDATE_GOLDEN=1 to accept):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}
