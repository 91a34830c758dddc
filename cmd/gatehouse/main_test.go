package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casbin/casbin/v2"
	fileadapter "github.com/casbin/casbin/v2/persist/file-adapter"

	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

// update makes policytest.Golden rewrite the golden files (it looks the
// flag up by name).
var _ = flag.Bool("update", false, "rewrite testdata/*.golden")

func gh(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCommands runs each command on testdata/acme.yaml and compares its
// output with testdata/<name>.golden (go test -update rewrites them).
func TestCommands(t *testing.T) {
	f := "testdata/acme.yaml"
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"test", []string{"test", "-f", f}, 0},
		{"check-allowed", []string{"check", "-f", f, "-subject", "user:bob", "-entity", "acme", "-object", "payable", "-action", "approve"}, 0},
		{"check-denied", []string{"check", "-f", f, "-subject", "user:alice", "-entity", "acme", "-object", "payable", "-action", "approve"}, 1},
		{"explain-own", []string{"explain", "-f", f, "-subject", "user:alice", "-entity", "acme", "-object", "receivable", "-action", "read", "-owner", "user:bob"}, 1},
		{"matrix", []string{"matrix", "-f", f, "-entity", "acme"}, 0},
		{"diff-default", []string{"diff", "-f", f, "-entity", "acme", "-op", "set_default_role", "-role", "clerk"}, 1},
		{"diff-perms", []string{"diff", "-f", f, "-entity", "acme", "-op", "update_role", "-role", "viewer", "-perms", "payable.read=allowed,payable.pay=allowed_for_own"}, 1},
		{"diff-none", []string{"diff", "-f", f, "-entity", "acme", "-op", "set_user_role", "-user", "carol", "-role", "viewer"}, 0},
		{"export", []string{"export", "-f", f}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := gh(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			policytest.Golden(t, filepath.Join("testdata", tt.name+".golden"), out)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("entities:\n  - id: e\n    partner: p\n    colour: red\n"), 0o644)
	failing := filepath.Join(dir, "failing.yaml")
	os.WriteFile(failing, []byte("entities: [{id: e, partner: p}]\ncases: [{name: wrong, subject: partner:p, entity: e, object: payable, action: read, expect: deny}]\n"), 0o644)
	badExpect := filepath.Join(dir, "badexpect.yaml")
	os.WriteFile(badExpect, []byte("entities: [{id: e, partner: p}]\ncases: [{name: typo, subject: partner:p, entity: e, object: payable, action: read, expect: alow}]\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage: gatehouse"},
		{"help", []string{"help"}, 0, "usage: gatehouse"},
		{"-h", []string{"-h"}, 0, "usage: gatehouse"},
		{"command -h", []string{"matrix", "-h"}, 0, "-entity"},
		{"test has no -db", []string{"test", "-db", "x"}, 2, "flag provided but not defined: -db"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", []string{"check", "-nope"}, 2, "flag provided but not defined"},
		{"no source", []string{"matrix", "-entity", "e"}, 2, "-f or -db is required"},
		{"both sources", []string{"matrix", "-f", "x", "-db", "y", "-entity", "e"}, 2, "not both"},
		{"missing file", []string{"test", "-f", filepath.Join(dir, "none.yaml")}, 2, "no such file"},
		{"bad file has line and column", []string{"test", "-f", bad}, 2, `[4:5] unknown field "colour"`},
		{"failing case", []string{"test", "-f", failing}, 1, ""},
		{"bad expect is an input error", []string{"test", "-f", badExpect}, 2, `[2:92] expect "alow" is not allow, deny or error`},
		{"unknown object", []string{"check", "-f", failing, "-subject", "partner:p", "-entity", "e", "-object", "invoice", "-action", "read"}, 2, "unknown object type"},
		{"bad subject", []string{"check", "-f", failing, "-subject", "root", "-entity", "e", "-object", "payable", "-action", "read"}, 2, "not partner:<id> or user:<id>"},
		{"update_role without perms", []string{"diff", "-f", failing, "-entity", "e", "-op", "update_role", "-role", "r"}, 2, "update_role needs -perms"},
		{"bad perms", []string{"diff", "-f", failing, "-entity", "e", "-op", "update_role", "-perms", "payable"}, 2, "not object.action=permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := gh(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut+out, tt.want) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tt.code, out, errOut, tt.want)
			}
		})
	}
}

// TestExportLoadsInCasbin: the exported model and policy work in Casbin's
// own enforcer, with the same answers.
func TestExportLoadsInCasbin(t *testing.T) {
	dir := t.TempDir()
	m, p := filepath.Join(dir, "gatehouse.conf"), filepath.Join(dir, "policy.csv")
	if _, errOut, code := gh(t, "export", "-f", "testdata/acme.yaml", "-model", m, "-policy", p); code != 0 {
		t.Fatal(errOut)
	}
	e, err := casbin.NewEnforcer(m, fileadapter.NewAdapter(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sub, obj, act, owner string
		want                 bool
	}{
		{"user:bob", "payable", "approve", "", true},
		{"user:alice", "payable", "approve", "", false},
		{"user:carol", "payable", "read", "", true},
		{"user:alice", "receivable", "read", "user:bob", false},
		{"user:alice", "receivable", "read", "user:alice", true},
		{"partner:partner-1", "receivable", "create", "", true},
	} {
		if got, err := e.Enforce(c.sub, "entity:acme", c.obj, c.act, c.owner); err != nil || got != c.want {
			t.Errorf("Enforce(%v) = %v, %v", c, got, err)
		}
	}
}

// TestDatabaseSource reads the policy from a SQLite database written by the
// store.
func TestDatabaseSource(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "g.db")
	fix, err := policytest.Load("testdata/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fix.Catalog = nil // the database engine uses the default catalog
	if err := seedDB(ctx, dsn, fix); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := gh(t, "check", "-db", dsn, "-subject", "user:bob", "-entity", "acme", "-object", "payable", "-action", "pay")
	if code != 0 || out != "allowed (scope all)\n" {
		t.Fatalf("exit %d, %q %q", code, out, errOut)
	}
}

// TestDatabaseUnchanged: reading a SQLite database changes nothing in it,
// not even its journal mode, and a missing one is not created, whatever its
// path (found in review: the command opened databases as the store does,
// switching them to WAL, and a path with "=" in it skipped the check for a
// missing file, which the driver then created).
func TestDatabaseUnchanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "g.db")
	fix, err := policytest.Load("testdata/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fix.Catalog = nil
	if err := seedDB(ctx, path+"?_journal_mode=DELETE", fix); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := gh(t, "check", "-db", path, "-subject", "user:bob", "-entity", "acme", "-object", "payable", "-action", "pay"); code != 0 {
		t.Fatalf("exit %d, %q %q", code, out, errOut)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the database file changed (journal mode bytes %v -> %v)", before[18:20], after[18:20])
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files beside the database: %v", ents)
	}

	odd := filepath.Join(t.TempDir(), "env=prod")
	if err := os.Mkdir(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := gh(t, "matrix", "-db", filepath.Join(odd, "none.db"), "-entity", "e"); code != 2 {
		t.Errorf("missing database under %s: exit %d, stderr %q", odd, code, errOut)
	}
	if ents, _ := os.ReadDir(odd); len(ents) != 0 {
		t.Errorf("the command created %v", ents)
	}
}

// TestDatabaseCatalog: rules of a service with its own catalog load with
// -catalog; without it they are reported, and export refuses to print a
// partial policy.
func TestDatabaseCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "g.db")
	fix, err := policytest.Parse([]byte(`
catalog: {payable: [read], invoice: [read]}
entities:
  - id: e
    partner: p
    roles: [{id: r, permissions: {payable: {read: allowed}, invoice: {read: allowed}}}]
    users: [{id: u, role: r}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := seedDB(ctx, dsn, fix); err != nil {
		t.Fatal(err)
	}
	catFile := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catFile, []byte(`{"payable": ["read"], "invoice": ["read"]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := gh(t, "export", "-db", dsn)
	if code != 2 || !strings.Contains(errOut, "1 stored rules were ignored") || !strings.Contains(errOut, "level=WARN") {
		t.Errorf("export without -catalog: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(out, "# policy") {
		t.Errorf("export without -catalog printed a partial policy:\n%s", out)
	}
	out, errOut, code = gh(t, "check", "-db", dsn, "-subject", "user:u", "-entity", "e", "-object", "payable", "-action", "read")
	if code != 0 || out != "allowed (scope all)\n" || !strings.Contains(errOut, "warning: 1 stored rules were ignored") {
		t.Errorf("check without -catalog: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = gh(t, "export", "-db", dsn, "-catalog", catFile)
	if code != 0 || errOut != "" || !strings.Contains(out, "invoice") {
		t.Errorf("export with -catalog: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = gh(t, "check", "-db", dsn, "-catalog", catFile, "-subject", "user:u", "-entity", "e", "-object", "invoice", "-action", "read")
	if code != 0 || errOut != "" {
		t.Errorf("check invoice with -catalog: exit %d, %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"payable": "read"}`), 0o644)
	for _, args := range [][]string{
		{"export", "-db", dsn, "-catalog", bad},
		{"export", "-db", dsn, "-catalog", filepath.Join(dir, "none.json")},
		{"export", "-f", "testdata/acme.yaml", "-catalog", catFile},
	} {
		if _, errOut, code := gh(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestMissingDatabase: a SQLite database that does not exist is an error,
// and the command creates nothing.
func TestMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "none.db"),
		"file:" + filepath.Join(dir, "none.db") + "?_busy_timeout=100",
	} {
		_, errOut, code := gh(t, "matrix", "-db", dsn, "-entity", "e")
		if code != 2 || !strings.Contains(errOut, "no database file") {
			t.Errorf("%s: exit %d, stderr %q", dsn, code, errOut)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the command created %v", ents)
	}
}

// TestKeyValueDSNSecret: a key=value DSN is left to store.Open, which
// refuses it with its password masked; the command never prints it.
func TestKeyValueDSNSecret(t *testing.T) {
	_, errOut, code := gh(t, "matrix", "-db", "host=127.0.0.1 password=s3cret", "-entity", "e")
	if code != 2 || strings.Contains(errOut, "s3cret") || !strings.Contains(errOut, "postgres://") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
