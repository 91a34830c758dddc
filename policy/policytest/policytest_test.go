package policytest_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

func load(t *testing.T) (*policytest.Fixture, *policy.Engine) {
	t.Helper()
	f, err := policytest.Load("testdata/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := f.Engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f, eng
}

func TestRunCases(t *testing.T) {
	f, eng := load(t)
	f.Run(t, eng)
}

func TestCheckSaysWhy(t *testing.T) {
	_, eng := load(t)
	c := policytest.Case{Subject: "user:alice", Entity: "acme", Object: "payable", Action: "approve", Expect: "allow", Role: "approver"}
	err := c.Check(context.Background(), eng)
	if err == nil {
		t.Fatal("a wrong expectation passed")
	}
	for _, want := range []string{"got deny, want allow", `role "clerk" decided, want "approver"`, `Role "Clerk" (clerk, its own role) gives not_allowed`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("failure message %q lacks %q", err, want)
		}
	}
}

func TestMatrixGolden(t *testing.T) {
	_, eng := load(t)
	got, err := policytest.Matrix(context.Background(), eng, "acme")
	if err != nil {
		t.Fatal(err)
	}
	policytest.Golden(t, "testdata/acme.matrix", got)
}

func TestWhatIf(t *testing.T) {
	_, eng := load(t)
	ctx := context.Background()
	before := eng.Rules()
	tests := []struct {
		name string
		step policytest.Step
		want []string
	}{
		{"switch the default role", policytest.Step{Op: "set_default_role", Role: "approver"}, []string{
			"acme carol payable.approve: - -> all (gains)",
			"acme carol payable.pay: - -> all (gains)",
		}},
		{"edit a role", policytest.Step{Op: "update_role", Role: "clerk", Permissions: policytest.Permissions{"payable": {"read": model.Allowed}}}, []string{
			"acme alice payable.create: own -> - (loses)",
			"acme alice receivable.create: own -> - (loses)",
			"acme alice receivable.read: own -> - (loses)",
		}},
		{"change a user's role", policytest.Step{Op: "set_user_role", User: "bob", Role: "viewer"}, []string{
			"acme bob payable.approve: all -> - (loses)",
			"acme bob payable.pay: all -> - (loses)",
		}},
		{"nothing changes", policytest.Step{Op: "set_user_role", User: "carol", Role: "viewer"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policytest.WhatIf(ctx, eng, "acme", tt.step)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, c := range got {
				lines = append(lines, c.String())
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("WhatIf =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	if dump(eng.Rules()) != dump(before) {
		t.Fatal("WhatIf changed the engine")
	}
}

func dump(rs []model.Rule) string {
	var ls []string
	for _, r := range rs {
		ls = append(ls, r.String())
	}
	sort.Strings(ls)
	return strings.Join(ls, "\n")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "entities:\n  - id: e\n    partner: p\n    colour: red\n", "[4:5] unknown field \"colour\""},
		{"bad syntax", "entities: [\n", "[1:"},
		{"bad permission", "entities:\n  - id: e\n    partner: p\n    roles:\n      - id: r\n        permissions: {payable: {read: yes}}\n", "invalid permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policytest.Parse([]byte(tt.yaml))
			if !errors.Is(err, policytest.ErrFixture) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one with %q", err, tt.want)
			}
		})
	}
	f, err := policytest.Parse([]byte("entities:\n  - {id: e, partner: p, users: [{id: u, role: missing}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Engine(context.Background()); !errors.Is(err, policytest.ErrFixture) || !errors.Is(err, policy.ErrNotFound) {
		t.Fatalf("fixture with a missing role: %v", err)
	}
}

// TestUpdateRoleSteps: an update_role step without permissions leaves the
// role's permissions as they are; "permissions: {}" removes them all.
func TestUpdateRoleSteps(t *testing.T) {
	f, err := policytest.Parse([]byte(`
entities:
  - id: e
    partner: p
    roles: [{id: r, permissions: {payable: {read: allowed}}}]
    users: [{id: u, role: r}]
cases:
  - name: absent permissions leave the role unchanged
    do: [{op: update_role, entity: e, role: r}]
    subject: user:u
    entity: e
    object: payable
    action: read
    expect: allow
  - name: empty permissions remove them
    do: [{op: update_role, entity: e, role: r, permissions: {}}]
    subject: user:u
    entity: e
    object: payable
    action: read
    expect: deny
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Cases[0].Do[0].Permissions.Model() != nil {
		t.Error("absent permissions are not nil")
	}
	eng, err := f.Engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.Run(t, eng)
}
