// Command gatehouse evaluates Gatehouse policies outside a service: it runs a
// fixture's cases, decides and explains single requests, prints an entity's
// access matrix, shows what a change would do to access before it is made,
// and exports the policy for Casbin's own tools.
//
// Usage:
//
//	gatehouse test    -f fixture.yaml
//	gatehouse check   (-f fixture.yaml | -db DSN) -subject user:u1 -entity e1 -object payable -action approve [-owner user:u2]
//	gatehouse explain (-f fixture.yaml | -db DSN) -subject ... (as check)
//	gatehouse matrix  (-f fixture.yaml | -db DSN) -entity e1
//	gatehouse diff    (-f fixture.yaml | -db DSN) -entity e1 -op set_default_role -role r2
//	gatehouse export  (-f fixture.yaml | -db DSN) [-model gatehouse.conf] [-policy policy.csv]
//
// The policy comes from a fixture file (YAML, see package policytest) or from
// a database (a DSN as package store opens it; the database is only read,
// and a SQLite file is opened read-only: store.OpenReadOnly).
// A database is read with Monite's catalog of object types and actions unless
// -catalog names a JSON file holding the service's own (as
// model.ParseCatalogJSON reads it: {"payable": ["read", "approve"], ...}).
// Stored rules outside the catalog cannot be loaded: they are reported on
// standard error, and export, whose output would be incomplete, fails with
// exit code 2; the other commands answer from the rules that were loaded.
//
// Exit codes: 0 success (check: allowed; test: every case passed; diff: no
// change in access), 1 the answer is no (check: denied; test: a case failed;
// diff: access would change), 2 bad usage or input (export: stored rules
// were ignored).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/policy/policytest"
	"github.com/gatehouse-authz/gatehouse/store"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: gatehouse <command> [flags]

commands:
  test     run a fixture's cases                 (-f)
  check    decide one request                    (-f | -db [-catalog]) -subject -entity -object -action [-owner]
  explain  decide one request and say why        (as check)
  matrix   print an entity's access matrix       (-f | -db [-catalog]) -entity
  diff     what a change would do to access      (-f | -db [-catalog]) -entity -op [-role] [-user] [-perms]
  export   print the Casbin model and policy     (-f | -db [-catalog]) [-model FILE] [-policy FILE]

Run 'gatehouse <command> -h' for a command's flags.
`

// errUsage marks errors that are the caller's input.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("gatehouse "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "fixture file (YAML)")
	var dsn, prefix, catalog string
	if cmd != "test" { // test needs a fixture's cases
		fs.StringVar(&dsn, "db", "", "database DSN (file path, file: URI, postgres://..., mysql://...)")
		fs.StringVar(&prefix, "table-prefix", "gatehouse_", "table prefix in the database")
		fs.StringVar(&catalog, "catalog", "", "with -db: the service's catalog, a JSON file of object types to actions (default: Monite's)")
	}
	var req struct{ subject, entity, object, action, owner string }
	var op, role, user, perms, modelOut, policyOut string
	switch cmd {
	case "test":
	case "check", "explain":
		fs.StringVar(&req.subject, "subject", "", "partner:<id> or user:<id>")
		fs.StringVar(&req.entity, "entity", "", "entity id")
		fs.StringVar(&req.object, "object", "", "object type")
		fs.StringVar(&req.action, "action", "", "action")
		fs.StringVar(&req.owner, "owner", "", "the object's creator (partner:<id> or user:<id>); empty for a list")
	case "matrix":
		fs.StringVar(&req.entity, "entity", "", "entity id")
	case "diff":
		fs.StringVar(&req.entity, "entity", "", "entity id")
		fs.StringVar(&op, "op", "", "set_default_role, set_user_role, update_role, delete_role, remove_user or remove_entity")
		fs.StringVar(&role, "role", "", "role id")
		fs.StringVar(&user, "user", "", "entity user id")
		fs.StringVar(&perms, "perms", "", "update_role's new permissions: object.action=permission,...")
	case "export":
		fs.StringVar(&modelOut, "model", "", "write the Casbin model to this file (default: standard output)")
		fs.StringVar(&policyOut, "policy", "", "write the policy CSV to this file (default: standard output)")
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	code, err := func() (int, error) {
		src := source{file: *file, dsn: dsn, prefix: prefix, catalog: catalog, log: stderr}
		fix, eng, closeFn, err := src.open(ctx, cmd == "test")
		if err != nil {
			return 2, err
		}
		defer closeFn()
		if src.ignored > 0 {
			const msg = "%d stored rules were ignored (outside the catalog, or malformed); give the service's catalog with -catalog"
			if cmd == "export" {
				return 2, fmt.Errorf(msg+": an export without them would be incomplete", src.ignored)
			}
			fmt.Fprintf(stderr, "gatehouse %s: warning: "+msg+"; the answer below ignores them\n", cmd, src.ignored)
		}
		switch cmd {
		case "test":
			return runTests(ctx, fix, eng, stdout), nil
		case "check", "explain":
			return decide(eng, cmd == "explain", req.subject, req.entity, req.object, req.action, req.owner, stdout)
		case "matrix":
			if req.entity == "" {
				return 2, fmt.Errorf("%w: -entity is required", errUsage)
			}
			m, err := policytest.Matrix(ctx, eng, model.EntityID(req.entity))
			if err != nil {
				return 2, err
			}
			fmt.Fprint(stdout, m)
			return 0, nil
		case "diff":
			return diff(ctx, eng, req.entity, op, role, user, perms, stdout)
		default:
			return export(eng, modelOut, policyOut, stdout)
		}
	}()
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", cmd, err)
	}
	return code
}

// source is where the policy comes from: a fixture file or a database.
type source struct {
	file, dsn, prefix, catalog string
	log                        io.Writer // the engine's warnings
	ignored                    int       // stored rules the engine could not load
}

// open loads the policy from a fixture or a database.
func (s *source) open(ctx context.Context, needFixture bool) (*policytest.Fixture, *policy.Engine, func(), error) {
	nop := func() {}
	switch {
	case s.file != "" && s.dsn != "":
		return nil, nil, nop, fmt.Errorf("%w: give -f or -db, not both", errUsage)
	case s.file != "" && s.catalog != "":
		return nil, nil, nop, fmt.Errorf("%w: -catalog is for -db; a fixture has its own catalog", errUsage)
	case s.file != "":
		fix, err := policytest.Load(s.file)
		if err != nil {
			return nil, nil, nop, err
		}
		eng, err := fix.Engine(ctx)
		return fix, eng, nop, err
	case needFixture:
		return nil, nil, nop, fmt.Errorf("%w: -f is required", errUsage)
	case s.dsn != "":
		opts := []policy.Option{policy.WithLogger(slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelWarn})))}
		if s.catalog != "" {
			b, err := os.ReadFile(s.catalog)
			if err != nil {
				return nil, nil, nop, err
			}
			cat, err := model.ParseCatalogJSON(b)
			if err != nil {
				return nil, nil, nop, fmt.Errorf("%s: %w", s.catalog, err)
			}
			opts = append(opts, policy.WithCatalog(cat))
		}
		if err := sqliteExists(s.dsn); err != nil {
			return nil, nil, nop, err
		}
		db, err := store.OpenReadOnly(ctx, s.dsn)
		if err != nil {
			return nil, nil, nop, err
		}
		closeFn := func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		}
		st, err := store.New(ctx, db, store.WithTablePrefix(s.prefix))
		if err != nil {
			closeFn()
			return nil, nil, nop, err
		}
		eng, err := policy.New(ctx, append(opts, policy.WithStore(readOnly{st}))...)
		if err != nil {
			closeFn()
			return nil, nil, nop, err
		}
		s.ignored = eng.Ignored()
		return nil, eng, closeFn, nil
	}
	return nil, nil, nop, fmt.Errorf("%w: -f or -db is required", errUsage)
}

// sqliteExists returns an error if dsn names a SQLite database file that does
// not exist: the driver would create it (and a WAL file beside it), and the
// command would then fail with "no such table". Other DSNs, and in-memory
// databases, pass.
func sqliteExists(dsn string) error {
	if strings.Contains(dsn, "://") || strings.Contains(strings.SplitN(dsn, "?", 2)[0], "=") {
		return nil // a URL or a key=value DSN: store.Open classifies it (and masks its secrets)
	}
	path, query, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: no database file %s (the gatehouse command does not create databases)", errUsage, path)
		}
		return err
	}
	return nil
}

// readOnly loads from a store and refuses to write to it.
type readOnly struct{ policy.Store }

func (readOnly) Commit(context.Context, *policy.Change) error {
	return errors.New("the gatehouse command does not change databases")
}

func runTests(ctx context.Context, fix *policytest.Fixture, eng *policy.Engine, out io.Writer) int {
	failed := 0
	for i, c := range fix.Cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		if err := c.Check(ctx, eng); err != nil {
			failed++
			fmt.Fprintf(out, "FAIL %s\n     %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n     "))
			continue
		}
		fmt.Fprintf(out, "ok   %s\n", name)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(fix.Cases)-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func decide(eng *policy.Engine, explain bool, subject, entity, object, action, owner string, out io.Writer) (int, error) {
	if subject == "" || entity == "" || object == "" || action == "" {
		return 2, fmt.Errorf("%w: -subject, -entity, -object and -action are required", errUsage)
	}
	c := policytest.Case{Subject: subject, Entity: model.EntityID(entity), Object: model.ObjectType(object), Action: model.Action(action), Owner: owner}
	r, err := c.Request()
	if err != nil {
		return 2, err
	}
	d, why := eng.Explain(&r)
	if d.Err != nil {
		return 2, d.Err
	}
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	if explain {
		fmt.Fprintln(out, why)
	} else {
		fmt.Fprintf(out, "%s (scope %s)\n", verdict, d.Scope)
	}
	if !d.Allowed {
		return 1, nil
	}
	return 0, nil
}

func diff(ctx context.Context, eng *policy.Engine, entity, op, role, user, perms string, out io.Writer) (int, error) {
	if entity == "" || op == "" {
		return 2, fmt.Errorf("%w: -entity and -op are required", errUsage)
	}
	step := policytest.Step{Op: op, Entity: model.EntityID(entity), Role: model.RoleID(role), User: model.UserID(user)}
	if op == "update_role" && perms == "" {
		// Without -perms the step would change nothing: the command has no
		// other field of a role to update.
		return 2, fmt.Errorf("%w: update_role needs -perms", errUsage)
	}
	if perms != "" {
		ps, err := parsePerms(perms)
		if err != nil {
			return 2, err
		}
		step.Permissions = ps
	}
	changes, err := policytest.WhatIf(ctx, eng, model.EntityID(entity), step)
	if err != nil {
		return 2, err
	}
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	fmt.Fprintf(out, "%d changes in access\n", len(changes))
	if len(changes) > 0 {
		return 1, nil
	}
	return 0, nil
}

// parsePerms parses "payable.read=allowed,payable.approve=allowed_for_own".
func parsePerms(s string) (policytest.Permissions, error) {
	ps := policytest.Permissions{}
	for _, item := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		obj, act, ok2 := strings.Cut(key, ".")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%w: -perms item %q is not object.action=permission", errUsage, item)
		}
		p, err := model.ParsePermission(val)
		if err != nil {
			return nil, err
		}
		if ps[model.ObjectType(obj)] == nil {
			ps[model.ObjectType(obj)] = map[model.Action]model.Permission{}
		}
		ps[model.ObjectType(obj)][model.Action(act)] = p
	}
	return ps, nil
}

func export(eng *policy.Engine, modelOut, policyOut string, stdout io.Writer) (int, error) {
	var csv strings.Builder
	for _, r := range eng.Rules() {
		csv.WriteString(r.String())
		csv.WriteByte('\n')
	}
	write := func(path, text string) error {
		if path == "" {
			_, err := io.WriteString(stdout, text)
			return err
		}
		return os.WriteFile(path, []byte(text), 0o644)
	}
	if err := write(modelOut, model.Text()); err != nil {
		return 2, err
	}
	if modelOut == "" && policyOut == "" {
		fmt.Fprintln(stdout, "\n# policy")
	}
	if err := write(policyOut, csv.String()); err != nil {
		return 2, err
	}
	return 0, nil
}
