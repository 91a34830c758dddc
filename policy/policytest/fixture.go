package policytest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Fixture is a policy and the cases it must answer.
type Fixture struct {
	// Catalog maps object types to actions; empty means model.DefaultCatalog.
	Catalog  map[model.ObjectType][]model.Action `yaml:"catalog,omitempty"`
	Entities []Entity                            `yaml:"entities"`
	Cases    []Case                              `yaml:"cases,omitempty"`

	path string    // the file Load read, for errors
	file *ast.File // the parsed YAML, for the positions of errors
}

// Entity is one entity of a fixture.
type Entity struct {
	ID          model.EntityID  `yaml:"id"`
	Partner     model.PartnerID `yaml:"partner"`
	DefaultRole model.RoleID    `yaml:"default_role,omitempty"`
	Roles       []Role          `yaml:"roles,omitempty"`
	Users       []User          `yaml:"users,omitempty"`
}

// Role is one role of a fixture entity.
type Role struct {
	ID          model.RoleID `yaml:"id"`
	Name        string       `yaml:"name,omitempty"` // defaults to the id
	Permissions Permissions  `yaml:"permissions,omitempty"`
}

// Permissions is object type -> action -> permission, as written in YAML.
type Permissions map[model.ObjectType]map[model.Action]model.Permission

// Model returns the permissions in the engine's form. Absent permissions
// (nil) give nil, which a [policy.RoleUpdate] reads as "leave unchanged";
// written but empty ones ("permissions: {}") give an empty map, which
// replaces all permissions with none.
func (ps Permissions) Model() model.Permissions {
	if ps == nil {
		return nil
	}
	out := model.Permissions{}
	for o, acts := range ps {
		for a, p := range acts {
			out[model.Key{Object: o, Action: a}] = p
		}
	}
	return out
}

// User is one entity user of a fixture; Role is empty for a user without a
// role.
type User struct {
	ID   model.UserID `yaml:"id"`
	Role model.RoleID `yaml:"role,omitempty"`
}

// Case is one request and its expected answer.
type Case struct {
	Name    string           `yaml:"name"`
	Do      []Step           `yaml:"do,omitempty"`      // changes made before the request
	Subject string           `yaml:"subject"`           // partner:<id> or user:<id>
	Entity  model.EntityID   `yaml:"entity"`            //
	Object  model.ObjectType `yaml:"object"`            //
	Action  model.Action     `yaml:"action"`            //
	Owner   string           `yaml:"owner,omitempty"`   // partner:<id>, user:<id>, or empty (a list)
	Expect  string           `yaml:"expect"`            // allow, deny or error
	Scope   string           `yaml:"scope,omitempty"`   // all, own or none: the list scope, when given
	Role    model.RoleID     `yaml:"role,omitempty"`    // the role that decided, when given
	Default *bool            `yaml:"default,omitempty"` // whether the default role decided, when given
}

// Step is one change made before a case's request.
type Step struct {
	Op          string         `yaml:"op"` // set_default_role, set_user_role, update_role, delete_role, remove_user, remove_entity
	Entity      model.EntityID `yaml:"entity"`
	Role        model.RoleID   `yaml:"role,omitempty"`
	User        model.UserID   `yaml:"user,omitempty"`
	Permissions Permissions    `yaml:"permissions,omitempty"` // update_role: absent leaves them unchanged, {} removes them all
	Error       string         `yaml:"error,omitempty"`       // expected refusal: not_found, conflict, invalid
}

// ErrFixture is wrapped by every error about a malformed fixture.
var ErrFixture = errors.New("invalid fixture")

// Parse reads a fixture from YAML. Unknown fields are errors; errors give
// the line and column ("[3:5] unknown field ..."). Fixtures are plain YAML:
// tags ("!x", "!!str", "!!map", ...) are errors too; quote a value to make
// it a string. Every error wraps [ErrFixture], and Parse does not panic,
// whatever data holds.
func Parse(data []byte) (f *Fixture, err error) {
	// Last line of defence: go-yaml has panicked on malformed input before
	// (a tagged mapping bound to a slice field dereferenced nil in
	// Decoder.decodeSlice). rejectTags closes the holes we know of; should
	// the decoder still panic on some input, that input is a malformed
	// fixture, and the caller (often a CLI reading a user's file) must get an
	// error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%w: malformed YAML (decoder panic: %v)", ErrFixture, r)
		}
	}()
	if err := rejectTags(data); err != nil {
		return nil, err
	}
	file, perr := parser.ParseBytes(data, 0)
	if perr == nil {
		if err := checkDocument(file); err != nil {
			return nil, err
		}
	}
	f = new(Fixture)
	if err := yaml.UnmarshalWithOptions(data, f, yaml.DisallowUnknownField()); err != nil {
		if perr == nil {
			// The decoder reports a bad permission without its position.
			if err := checkPermissions(file); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrFixture, yaml.FormatError(err, false, true))
	}
	if perr != nil {
		return nil, fmt.Errorf("%w: %s", ErrFixture, yaml.FormatError(perr, false, true))
	}
	f.file = file
	if err := f.checkCases(); err != nil {
		return nil, err
	}
	return f, nil
}

// pos returns "[line:col] " for the node at path (a YAML path such as
// "$.cases[0].expect"), or "" when the fixture was not parsed from YAML or
// has no such node.
func (f *Fixture) pos(path string) string {
	if f.file == nil {
		return ""
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return ""
	}
	n, err := p.FilterFile(f.file)
	if err != nil || n == nil {
		return ""
	}
	return tokenPos(n.GetToken())
}

// tokenPos returns "[line:col] " for a token, or "" when it has no
// position.
func tokenPos(tk *token.Token) string {
	if tk == nil || tk.Position == nil {
		return ""
	}
	return fmt.Sprintf("[%d:%d] ", tk.Position.Line, tk.Position.Column)
}

// checkCases validates the fields of the cases that the decoder reads as
// plain strings, and that case names are unique.
func (f *Fixture) checkCases() error {
	expects := map[string]bool{"allow": true, "deny": true, "error": true}
	names := map[string]int{}
	for i, c := range f.Cases {
		at := fmt.Sprintf("$.cases[%d]", i)
		switch {
		case c.Subject == "":
			return f.errorf(at, "case %d: subject is required (partner:<id> or user:<id>)", i+1)
		case c.Entity == "":
			return f.errorf(at, "case %d: entity is required", i+1)
		case c.Object == "":
			return f.errorf(at, "case %d: object is required", i+1)
		case c.Action == "":
			return f.errorf(at, "case %d: action is required", i+1)
		case c.Expect == "":
			return f.errorf(at, "case %d: expect is required (allow, deny or error)", i+1)
		case !expects[c.Expect]:
			return f.errorf(at+".expect", "expect %q is not allow, deny or error", c.Expect)
		case c.Scope != "" && !validScope(c.Scope):
			return f.errorf(at+".scope", "scope %q is not all, own or none", c.Scope)
		}
		if c.Name == "" {
			continue
		}
		if j, ok := names[c.Name]; ok {
			return f.errorf(at+".name", "case name %q is used by case %d too", c.Name, j+1)
		}
		names[c.Name] = i
	}
	return nil
}

// checkDocument returns an error, with its position, for what the decoder
// would take without a word but the schema does not mean: a second YAML
// document (the decoder reads the first only, and the cases after "---"
// would never run); a number or a boolean where the schema has a string,
// id or name (the decoder turns 0123 into "83", 0x10 into "16", true into
// "true"), as a value or as a key; and a "default" without true or false
// (null would read as "not given", dropping the expectation).
func checkDocument(file *ast.File) error {
	docs := 0
	for _, doc := range file.Docs {
		if doc.Body == nil {
			continue
		}
		if docs++; docs > 1 {
			return fmt.Errorf("%w: %sa second YAML document: a fixture is one document (remove the \"---\")", ErrFixture, tokenPos(doc.Body.GetToken()))
		}
	}
	var walk func(n ast.Node, key string) error
	scalar := func(n ast.Node, key string) error {
		what := ""
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
			what = "a number"
		case *ast.BoolNode:
			if key == "default" {
				return nil
			}
			what = "a boolean"
		case *ast.NullNode:
			if key == "default" {
				return fmt.Errorf("%w: %sdefault must be true or false", ErrFixture, tokenPos(n.GetToken()))
			}
			return nil
		default:
			if key == "default" {
				if _, ok := n.(*ast.StringNode); ok {
					return fmt.Errorf("%w: %sdefault must be true or false, not %s", ErrFixture, tokenPos(n.GetToken()), n.String())
				}
			}
			return nil
		}
		if key == "default" {
			return fmt.Errorf("%w: %sdefault must be true or false, not %s", ErrFixture, tokenPos(n.GetToken()), n.String())
		}
		return fmt.Errorf("%w: %s%s is %s, where a string is expected: quote it (\"%s\")", ErrFixture, tokenPos(n.GetToken()), n.String(), what, n.String())
	}
	walk = func(n ast.Node, key string) error {
		switch n := n.(type) {
		case nil:
			return nil
		case *ast.MappingNode:
			for _, kv := range n.Values {
				if err := walk(kv, key); err != nil {
					return err
				}
			}
		case *ast.MappingValueNode:
			k := n.Key
			if mk, ok := k.(*ast.MappingKeyNode); ok {
				k, _ = mk.Value.(ast.MapKeyNode)
			}
			if k == nil {
				return nil
			}
			if err := scalar(k, ""); err != nil {
				return err
			}
			return walk(n.Value, k.String())
		case *ast.SequenceNode:
			for _, v := range n.Values {
				if err := walk(v, key); err != nil {
					return err
				}
			}
		case *ast.AnchorNode:
			return walk(n.Value, key)
		case *ast.TagNode, *ast.AliasNode, *ast.CommentGroupNode:
			return nil // tags are refused before; an alias repeats what its anchor holds
		default:
			return scalar(n, key)
		}
		return nil
	}
	for _, doc := range file.Docs {
		if err := walk(doc.Body, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkPermissions returns an error, with its position, for the first
// permission value that is not a permission's name.
func checkPermissions(file *ast.File) error {
	var err error
	visit := visitor(func(n ast.Node) bool {
		kv, ok := n.(*ast.MappingValueNode)
		if err != nil || !ok || kv.Key == nil || kv.Key.String() != "permissions" {
			return err == nil
		}
		for _, obj := range pairs(kv.Value) {
			for _, act := range pairs(obj.Value) {
				v, ok := act.Value.(ast.ScalarNode)
				if !ok {
					continue // the decoder reports the type
				}
				s, ok := v.GetValue().(string)
				if !ok {
					continue
				}
				if _, perr := model.ParsePermission(s); perr != nil && err == nil {
					err = fmt.Errorf("%w: %s%w", ErrFixture, tokenPos(act.Value.GetToken()), perr)
				}
			}
		}
		return false
	})
	for _, doc := range file.Docs {
		if doc.Body != nil {
			ast.Walk(visit, doc.Body)
		}
	}
	return err
}

// visitor walks the nodes for which it returns true.
type visitor func(ast.Node) bool

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if v(n) {
		return v
	}
	return nil
}

// pairs returns the key-value pairs of a mapping node (go-yaml gives a
// mapping of one pair as the pair itself).
func pairs(n ast.Node) []*ast.MappingValueNode {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}
	}
	return nil
}

// rejectTags returns an error for the first YAML tag in data. The fixture
// schema gives tags no meaning, and go-yaml mishandles them: its parser
// drops a tag without a value ("entities: !0" reads as null), and its
// decoder treats every tag node as a sequence, so that a tagged scalar or
// mapping ("entities: !!map {}", "entities: !!str x") bound to a slice field
// panics. Telling standard tags from custom ones would not be enough: the
// standard ones crash the decoder too. The check reads the token stream, not
// the node tree, because the tree has lost the tags without a value. Syntax
// errors are left for the decoder, which reports them with the source.
func rejectTags(data []byte) error {
	// The lexer drops a tag that ends the input ("cases: !x" without a
	// newline); a final newline makes it a token.
	for _, tk := range lexer.Tokenize(string(data) + "\n") {
		if tk.Type != token.TagType {
			continue
		}
		return fmt.Errorf("%w: %stag %s is not supported: fixtures are plain YAML (quote a value to make it a string)", ErrFixture, tokenPos(tk), tk.Value)
	}
	return nil
}

// Load reads a fixture file.
func Load(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.path = path
	return f, nil
}

// CatalogOrDefault returns the fixture's catalog, or Monite's.
func (f *Fixture) CatalogOrDefault() (*model.Catalog, error) {
	if len(f.Catalog) == 0 {
		return model.DefaultCatalog(), nil
	}
	return model.NewCatalog(f.Catalog)
}

// FixtureTime is the clock of engines made by [Fixture.Engine]: roles are
// created and updated at this instant unless an option says otherwise.
var FixtureTime = time.Date(2024, 5, 25, 0, 0, 0, 0, time.UTC)

// Engine returns a new in-memory engine holding the fixture's policy.
func (f *Fixture) Engine(ctx context.Context, opts ...policy.Option) (*policy.Engine, error) {
	cat, err := f.CatalogOrDefault()
	if err != nil {
		return nil, f.errorf("$.catalog", "%w", err)
	}
	// A fixed clock keeps role timestamps, and so exports, reproducible.
	fixed := func() time.Time { return FixtureTime }
	eng, err := policy.New(ctx, append([]policy.Option{policy.WithCatalog(cat), policy.WithNow(fixed)}, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := f.Apply(ctx, eng); err != nil {
		return nil, err
	}
	return eng, nil
}

// Apply creates the fixture's entities, roles, users and default roles in
// eng. Its errors wrap [ErrFixture] and name the file and position, when the
// fixture was read by [Load] or [Parse].
func (f *Fixture) Apply(ctx context.Context, eng *policy.Engine) error {
	for i, en := range f.Entities {
		at := fmt.Sprintf("$.entities[%d]", i)
		if _, err := eng.CreateEntity(ctx, en.Partner, en.ID); err != nil {
			return f.errorf(at, "entity %q: %w", en.ID, err)
		}
		for j, r := range en.Roles {
			name := r.Name
			if name == "" {
				name = string(r.ID)
			}
			if _, err := eng.CreateRole(ctx, en.ID, policy.RoleSpec{ID: r.ID, Name: name, Permissions: r.Permissions.Model()}); err != nil {
				return f.errorf(fmt.Sprintf("%s.roles[%d]", at, j), "role %q: %w", r.ID, err)
			}
		}
		for j, u := range en.Users {
			if _, err := eng.AddUser(ctx, en.ID, u.ID, u.Role); err != nil {
				return f.errorf(fmt.Sprintf("%s.users[%d]", at, j), "user %q: %w", u.ID, err)
			}
		}
		if en.DefaultRole != "" {
			if err := eng.SetDefaultRole(ctx, en.ID, en.DefaultRole); err != nil {
				return f.errorf(at+".default_role", "default role of %q: %w", en.ID, err)
			}
		}
	}
	return nil
}

// errorf returns an error wrapping [ErrFixture] about the node at path (a
// YAML path), prefixed with the fixture's file and the node's position when
// they are known.
func (f *Fixture) errorf(path, format string, args ...any) error {
	err := fmt.Errorf("%w: %s%w", ErrFixture, f.pos(path), fmt.Errorf(format, args...))
	if f.path != "" {
		err = fmt.Errorf("%s: %w", f.path, err)
	}
	return err
}

// Request returns the case's request.
func (c Case) Request() (policy.Request, error) {
	sub, err := model.ParseSubject(c.Subject)
	if err != nil {
		return policy.Request{}, err
	}
	owner, err := model.ParseSubject(c.Owner)
	if err != nil {
		return policy.Request{}, fmt.Errorf("owner: %w", err)
	}
	return policy.Request{Subject: sub, Entity: c.Entity, Object: c.Object, Action: c.Action, Owner: owner}, nil
}

// Run runs every case against eng, one subtest each, in order (steps change
// eng).
func (f *Fixture) Run(t *testing.T, eng *policy.Engine) {
	t.Helper()
	for i, c := range f.Cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		t.Run(name, func(t *testing.T) {
			if err := c.Check(context.Background(), eng); err != nil {
				t.Error(err)
			}
		})
	}
}

// Check makes the case's changes, decides its request and returns an error
// that says what differs from the expectation, and why the engine decided as
// it did.
func (c Case) Check(ctx context.Context, eng *policy.Engine) error {
	for _, s := range c.Do {
		if err := s.apply(ctx, eng); err != nil {
			return err
		}
	}
	req, err := c.Request()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFixture, err)
	}
	d, why := eng.Explain(&req)
	var got string
	switch {
	case d.Err != nil:
		got = "error"
	case d.Allowed:
		got = "allow"
	default:
		got = "deny"
	}
	var diffs []string
	if got != c.Expect {
		diffs = append(diffs, fmt.Sprintf("got %s, want %s", got, c.Expect))
	}
	if c.Scope != "" {
		scope, _ := eng.Scope(req.Subject, req.Entity, req.Object, req.Action)
		if scope.String() != c.Scope {
			diffs = append(diffs, fmt.Sprintf("scope %s, want %s", scope, c.Scope))
		}
	}
	if c.Role != "" && d.Role != c.Role {
		diffs = append(diffs, fmt.Sprintf("role %q decided, want %q", d.Role, c.Role))
	}
	if c.Default != nil && d.ViaDefault != *c.Default {
		diffs = append(diffs, fmt.Sprintf("default role %v, want %v", d.ViaDefault, *c.Default))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s %s.%s in %s: %v\n\t%s", c.Subject, c.Expect, c.Object, c.Action, c.Entity, diffs, why)
}

func (s Step) apply(ctx context.Context, eng *policy.Engine) error {
	var err error
	switch s.Op {
	case "set_default_role":
		err = eng.SetDefaultRole(ctx, s.Entity, s.Role)
	case "set_user_role":
		_, err = eng.SetUserRole(ctx, s.Entity, s.User, s.Role)
	case "update_role":
		_, err = eng.UpdateRole(ctx, s.Entity, s.Role, policy.RoleUpdate{Permissions: s.Permissions.Model()})
	case "delete_role":
		err = eng.DeleteRole(ctx, s.Entity, s.Role)
	case "remove_user":
		err = eng.RemoveUser(ctx, s.Entity, s.User)
	case "remove_entity":
		err = eng.RemoveEntity(ctx, s.Entity)
	default:
		return fmt.Errorf("%w: unknown step %q", ErrFixture, s.Op)
	}
	want := map[string]error{"": nil, "not_found": policy.ErrNotFound, "conflict": policy.ErrConflict, "invalid": policy.ErrInvalid}
	w, ok := want[s.Error]
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown error kind %q", ErrFixture, s.Error)
	case w == nil && err != nil:
		return fmt.Errorf("step %s: %w", s.Op, err)
	case w != nil && !errors.Is(err, w):
		return fmt.Errorf("step %s: got error %v, want %s", s.Op, err, s.Error)
	}
	return nil
}

// validScope reports whether s names a scope (all, own or none).
func validScope(s string) bool {
	_, err := model.ParseScope(s)
	return err == nil
}
