package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/examples/server/api"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/store"
)

// backends runs fn on SQLite, on PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_DSN is set and on MySQL when
// GATEHOUSE_TEST_MYSQL_DSN is set.
func backends(t *testing.T, fn func(t *testing.T, env *env)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, newEnv(t, api.Config{DSN: filepath.Join(t.TempDir(), "e2e.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		db, _, prefix := postgresTables(t, "e2e_")
		fn(t, newEnv(t, api.Config{DB: db, TablePrefix: prefix}))
	})
	t.Run("mysql", func(t *testing.T) {
		db, _, prefix := mysqlTables(t, "e2e_")
		fn(t, newEnv(t, api.Config{DB: db, TablePrefix: prefix}))
	})
}

// postgresTables opens the database of GATEHOUSE_TEST_POSTGRES_DSN (the
// test skips when it is unset) and returns it, its DSN and a fresh table
// prefix beginning with tag. When the test ends, the tables of the prefix
// are dropped and the pool is closed.
func postgresTables(t *testing.T, tag string) (db *gorm.DB, dsn, prefix string) {
	return testTables(t, "GATEHOUSE_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", tag)
}

// mysqlTables is postgresTables for GATEHOUSE_TEST_MYSQL_DSN.
func mysqlTables(t *testing.T, tag string) (db *gorm.DB, dsn, prefix string) {
	return testTables(t, "GATEHOUSE_TEST_MYSQL_DSN", "mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true", tag)
}

// testTables opens the database of the environment variable env (the test
// skips when it is unset; example is a DSN for the message) and returns it,
// its DSN and a fresh table prefix beginning with tag. When the test ends,
// the tables of the prefix are dropped and the pool is closed.
func testTables(t *testing.T, env, example, tag string) (db *gorm.DB, dsn, prefix string) {
	t.Helper()
	dsn = os.Getenv(env)
	if dsn == "" {
		t.Skipf("%s is not set (e.g. %s)", env, example)
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix = tag + hex.EncodeToString(b[:]) + "_"
	t.Cleanup(func() {
		var tables []string
		schema, quote := "current_schema()", `"`
		if db.Dialector.Name() == "mysql" {
			schema, quote = "database()", "`"
		}
		db.Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = "+schema+" AND table_name LIKE ?", prefix+"%").Scan(&tables)
		for _, tb := range tables {
			if err := db.Exec("DROP TABLE IF EXISTS " + quote + tb + quote + " CASCADE").Error; err != nil {
				t.Errorf("drop %s: %v", tb, err)
			}
		}
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db, dsn, prefix
}

// env is a running server and a client for it.
type env struct {
	t      *testing.T
	srv    *api.Server
	url    string
	clock  *clock
	prefix string // of the tables
}

type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func newEnv(t *testing.T, cfg api.Config) *env {
	t.Helper()
	clk := &clock{}
	cfg.Now = clk.Now
	srv, err := api.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = store.DefaultTablePrefix
	}
	return &env{t: t, srv: srv, url: hs.URL, clock: clk, prefix: prefix}
}

// in returns e for the (sub)test t: its checks fail t.
func (e *env) in(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// partner creates an API client for partner and returns its credentials and
// a partner token.
func (e *env) partner(id string) (auth.ClientCredentials, string) {
	e.t.Helper()
	creds, err := e.srv.CreateClient(context.Background(), model.PartnerID(id))
	if err != nil {
		e.t.Fatalf("CreateClient: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.do("POST", "/auth/token", "", "", map[string]any{"grant_type": "client_credentials", "client_id": creds.ID, "client_secret": creds.Secret}, 200, &tok)
	return creds, tok.AccessToken
}

// userToken gets an entity-user token.
func (e *env) userToken(creds auth.ClientCredentials, user string) string {
	e.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	e.do("POST", "/auth/token", "", "", map[string]any{"grant_type": "entity_user", "client_id": creds.ID, "client_secret": creds.Secret, "entity_user_id": user}, 200, &tok)
	return tok.AccessToken
}

// do sends a request with a JSON body (a string is sent as is) and checks
// the status; the answer is decoded into dst when it is not nil.
func (e *env) do(method, path, token, entity string, body any, want int, dst any) []byte {
	e.t.Helper()
	status, got, err := e.send(method, path, token, entity, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, got)
	}
	if dst != nil {
		if err := json.Unmarshal(got, dst); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, got, err)
		}
	}
	return got
}

// send sends a request as do does and returns the status and the body of
// the answer, without checking them (it may run in any goroutine).
func (e *env) send(method, path, token, entity string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if entity != "" {
		req.Header.Set(api.EntityHeader, entity)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, got, err
}

// id sends a request that must answer want and returns the "id" of the answer.
func (e *env) id(method, path, token, entity string, body any, want int) string {
	e.t.Helper()
	var obj struct {
		ID string `json:"id"`
	}
	e.do(method, path, token, entity, body, want, &obj)
	if obj.ID == "" {
		e.t.Fatalf("%s %s: no id in the answer", method, path)
	}
	return obj.ID
}

// message returns the error message of a Monite error body.
func message(b []byte) string {
	var m struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &m)
	return m.Error.Message
}

func newEntity(e *env, token string) string {
	return e.id("POST", "/entities", token, "", map[string]any{"type": "organization", "email": "ap@example.com",
		"address":      map[string]any{"city": "Berlin", "country": "DE", "line1": "Street 1", "postal_code": "10115"},
		"organization": map[string]any{"legal_name": "Example GmbH"}}, 201)
}

// perms builds Monite's BizObjectsSchema from "object.action=permission".
func perms(grants ...string) map[string]any {
	byObj := map[string][]map[string]string{}
	var order []string
	for _, g := range grants {
		oa, p, _ := strings.Cut(g, "=")
		o, a, _ := strings.Cut(oa, ".")
		if _, ok := byObj[o]; !ok {
			order = append(order, o)
		}
		byObj[o] = append(byObj[o], map[string]string{"action_name": a, "permission": p})
	}
	objs := []map[string]any{}
	for _, o := range order {
		objs = append(objs, map[string]any{"object_type": o, "actions": byObj[o]})
	}
	return map[string]any{"objects": objs}
}

func role(name string, grants ...string) map[string]any {
	return map[string]any{"name": name, "permissions": perms(grants...)}
}

type page struct {
	Data []struct {
		ID     string  `json:"id"`
		Name   string  `json:"name"`
		RoleID *string `json:"role_id"`
	} `json:"data"`
	Next *string `json:"next_pagination_token"`
	Prev *string `json:"prev_pagination_token"`
}

// TestStory walks the quickstart's story and the refusals over real HTTP.
func TestStory(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)

		// Roles, default role, users.
		accountant := e.id("POST", "/roles", pt, ent, role("Accountant",
			"payable.create=allowed", "payable.read=allowed", "payable.approve=allowed",
			"role.create=allowed", "role.read=allowed", "role.update=allowed", "role.delete=allowed",
			"entity_user.create=allowed", "entity_user.read=allowed", "entity_user.update=allowed"), 200)
		clerk := e.id("POST", "/roles", pt, ent, role("Clerk",
			"payable.create=allowed", "payable.read=allowed_for_own", "payable.update=allowed_for_own"), 200)
		var settings struct {
			DefaultRoleID *string `json:"default_role_id"`
		}
		e.do("PATCH", "/entities/"+ent+"/settings", pt, "", map[string]any{"default_role_id": clerk}, 200, &settings)
		if settings.DefaultRoleID == nil || *settings.DefaultRoleID != clerk {
			t.Fatalf("default role %v, want %s", settings.DefaultRoleID, clerk)
		}
		alice := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "alice", "first_name": "Alice", "role_id": accountant}, 200)
		bob := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "bob", "first_name": "Bob"}, 200)
		carol := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "carol", "first_name": "Carol"}, 200)
		at, bt, ct := e.userToken(creds, alice), e.userToken(creds, bob), e.userToken(creds, carol)

		var me struct {
			ID     string  `json:"id"`
			Login  string  `json:"login"`
			RoleID *string `json:"role_id"`
		}
		e.do("GET", "/entity_users/me", bt, "", nil, 200, &me)
		if me.ID != bob || me.Login != "bob" || me.RoleID != nil {
			t.Errorf("me = %+v, want bob without a role of his own", me)
		}
		var my struct {
			ID string `json:"id"`
		}
		e.do("GET", "/entity_users/my_role", bt, "", nil, 200, &my)
		if my.ID != clerk {
			t.Errorf("bob's role %s, want the default %s", my.ID, clerk)
		}

		// Payables: allowed, own-only lists, denied.
		pay := map[string]any{"currency": "EUR", "total_amount": 100}
		bp := e.id("POST", "/payables", bt, "", pay, 200)
		cp := e.id("POST", "/payables", ct, "", pay, 200)
		ap := e.id("POST", "/payables", at, "", pay, 200)
		var list page
		e.do("GET", "/payables", bt, "", nil, 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != bp {
			t.Errorf("bob lists %+v, want only %s", list.Data, bp)
		}
		e.do("GET", "/payables", at, "", nil, 200, &list)
		if len(list.Data) != 3 {
			t.Errorf("alice lists %d payables, want 3", len(list.Data))
		}
		e.do("GET", "/payables?limit=2", pt, ent, nil, 200, &list)
		if len(list.Data) != 2 || list.Next == nil || list.Prev != nil {
			t.Fatalf("first page: %d items, next %v, prev %v", len(list.Data), list.Next, list.Prev)
		}
		e.do("GET", "/payables?limit=2&pagination_token="+*list.Next, pt, ent, nil, 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != ap || list.Next != nil || list.Prev == nil {
			t.Errorf("second page: %+v", list)
		}
		e.do("GET", "/payables/"+bp, bt, "", nil, 200, nil)
		e.do("GET", "/payables/"+cp, bt, "", nil, 403, nil)
		e.do("PATCH", "/payables/"+cp, bt, "", map[string]any{"total_amount": 1}, 403, nil)
		e.do("PATCH", "/payables/"+bp, bt, "", map[string]any{"total_amount": 1}, 200, nil)
		e.do("POST", "/payables/"+bp+"/approve_payment_operation", bt, "", nil, 403, nil)
		e.do("POST", "/payables/"+bp+"/approve_payment_operation", at, "", nil, 200, nil)
		e.do("POST", "/payables/"+bp+"/approve_payment_operation", at, "", nil, 409, nil)
		e.do("DELETE", "/payables/"+cp, ct, "", nil, 403, nil)
		e.do("DELETE", "/payables/"+cp, pt, ent, nil, 204, nil)
		e.do("GET", "/payables/"+cp, pt, ent, nil, 404, nil)
		e.do("GET", "/payables", pt, "", nil, 400, nil) // no entity header
		e.do("POST", "/payables", bt, "", map[string]any{"currency": "EUR", "amount": 1}, 422, nil)

		// Role management: escalation, validation, conflicts; nothing changes.
		var before page
		e.do("GET", "/roles", pt, ent, nil, 200, &before)
		b := e.do("POST", "/roles", at, "", role("Deleter", "payable.delete=allowed"), 403, nil)
		if !strings.Contains(message(b), "payable.delete") {
			t.Errorf("escalation message %q does not name payable.delete", message(b))
		}
		e.do("POST", "/roles", at, "", role("Approver", "payable.approve=allowed_for_own"), 200, nil) // allowed covers own
		e.do("POST", "/roles", bt, "", role("Mine", "payable.create=allowed"), 403, nil)              // no role.create
		e.do("PATCH", "/roles/"+clerk, at, "", map[string]any{"permissions": perms("payable.pay=allowed")}, 403, nil)
		e.do("POST", "/entity_users", at, "", map[string]any{"login": "x", "first_name": "X", "role_id": accountant}, 200, nil)
		admin := e.id("POST", "/roles", pt, ent, role("Admin", "payable.delete=allowed", "payable.read=allowed"), 200)
		e.do("POST", "/entity_users", at, "", map[string]any{"login": "y", "first_name": "Y", "role_id": admin}, 403, nil)
		e.do("PATCH", "/entity_users/"+bob, at, "", map[string]any{"role_id": admin}, 403, nil)
		e.do("DELETE", "/roles/"+admin, at, "", nil, 403, nil) // grants what alice lacks

		e.do("POST", "/roles", pt, ent, `{"name": "Broken", "permissions": {`, 400, nil)
		e.do("POST", "/roles", pt, ent, `{"name": "Two"} {"name": "Values"}`, 400, nil)
		e.do("POST", "/roles", pt, ent, `not json`, 400, nil)
		b = e.do("POST", "/roles", pt, ent, role("Bogus", "spaceship.read=allowed"), 422, nil)
		if !strings.Contains(message(b), "unknown object type") {
			t.Errorf("message %q", message(b))
		}
		e.do("POST", "/roles", pt, ent, role("Bogus", "payable.fly=allowed"), 422, nil)
		e.do("POST", "/roles", pt, ent, role("Bogus", "payable.read=sometimes"), 422, nil)
		e.do("POST", "/roles", pt, ent, role("Bogus", "payable.read=allowed", "payable.read=allowed_for_own"), 422, nil)
		b = e.do("POST", "/roles", pt, ent, `{"name":"Bogus","permissions":{"objects":[{"object_type":"payable","actions":[{"action_name":"read","permission":"allowed","scope":"all"}]}]}}`, 422, nil)
		if !strings.Contains(message(b), "scope") {
			t.Errorf("unknown-field message %q", message(b))
		}
		e.do("POST", "/roles", pt, ent, `{"name":"Bogus","permissions":{"objects":[]},"admin":true}`, 422, nil)
		e.do("POST", "/roles", pt, ent, `{"name":"Bogus"}`, 422, nil)
		e.do("POST", "/roles", pt, ent, `{"name":"`+strings.Repeat("x", 100<<10)+`","permissions":{"objects":[]}}`, 413, nil)
		e.do("POST", "/roles", pt, ent, role("Clerk", "payable.read=allowed"), 409, nil)
		e.do("PATCH", "/roles/"+accountant, pt, ent, map[string]any{"name": "Clerk"}, 409, nil)
		e.do("DELETE", "/roles/"+accountant, pt, ent, nil, 409, nil) // held by alice
		e.do("DELETE", "/roles/"+clerk, pt, ent, nil, 409, nil)      // the default role
		var after page
		e.do("GET", "/roles", pt, ent, nil, 200, &after)
		if len(after.Data) != len(before.Data)+2 { // Approver and Admin
			t.Errorf("roles: %d before, %d after, want 2 more", len(before.Data), len(after.Data))
		}
		e.do("GET", "/roles?limit=1", pt, ent, nil, 200, &list)
		// The first page is the first role of the whole list (oldest first;
		// roles created in the same millisecond are ordered by id).
		if len(list.Data) != 1 || len(after.Data) == 0 || list.Data[0].ID != after.Data[0].ID || list.Next == nil {
			t.Errorf("roles page 1: %+v", list)
		}

		// Changing the default role changes bob's access at once.
		viewer := e.id("POST", "/roles", pt, ent, role("Viewer", "payable.read=allowed"), 200)
		e.do("PATCH", "/entities/"+ent+"/settings", pt, "", map[string]any{"default_role_id": viewer}, 200, nil)
		e.do("GET", "/payables", bt, "", nil, 200, &list)
		if len(list.Data) != 2 {
			t.Errorf("bob as Viewer lists %d payables, want 2", len(list.Data))
		}
		e.do("DELETE", "/roles/"+clerk, pt, ent, nil, 204, nil)
		e.do("PATCH", "/entity_users/"+bob, pt, ent, map[string]any{"role_id": accountant, "last_name": "Builder"}, 200, &me)
		if me.RoleID == nil || *me.RoleID != accountant {
			t.Errorf("bob's role after PATCH: %v", me.RoleID)
		}
		e.do("PATCH", "/entities/"+ent+"/settings", pt, "", map[string]any{"default_role_id": nil}, 200, &settings)
		if settings.DefaultRoleID != nil {
			t.Errorf("default role not cleared")
		}
		e.do("GET", "/payables", ct, "", nil, 403, nil) // carol: no role, no default role

		// Cross-entity and cross-partner access.
		ent2 := newEntity(e, pt)
		e.do("GET", "/payables", at, ent2, nil, 403, nil)
		e.do("GET", "/entity_users/"+alice, pt, ent2, nil, 404, nil)
		e.do("GET", "/payables/"+ap, pt, ent2, nil, 404, nil)
		e.do("GET", "/roles/"+accountant, pt, ent2, nil, 404, nil)
		creds2, pt2 := e.partner("partner-2")
		e.do("GET", "/payables", pt2, ent, nil, 403, nil)
		e.do("POST", "/roles", pt2, ent, role("Mine", "payable.read=allowed"), 403, nil)
		e.do("GET", "/entities/"+ent, pt2, "", nil, 404, nil)
		e.do("PATCH", "/entities/"+ent+"/settings", pt2, "", map[string]any{"default_role_id": nil}, 404, nil)
		var ents page
		e.do("GET", "/entities", pt2, "", nil, 200, &ents)
		if len(ents.Data) != 0 {
			t.Errorf("partner 2 lists %d entities, want 0", len(ents.Data))
		}
		e.do("GET", "/entities", pt, "", nil, 200, &ents)
		if len(ents.Data) != 2 {
			t.Errorf("partner 1 lists %d entities, want 2", len(ents.Data))
		}
		e.do("POST", "/auth/token", "", "", map[string]any{"grant_type": "entity_user", "client_id": creds2.ID, "client_secret": creds2.Secret, "entity_user_id": alice}, 400, nil)
		e.do("POST", "/entities", at, "", map[string]any{}, 403, nil)
		e.do("PATCH", "/entities/"+ent, pt, "", map[string]any{"phone": "+4930123"}, 200, nil)
		e.do("PATCH", "/entities/"+ent, pt, "", map[string]any{"type": "individual"}, 422, nil)

		// Users: list, delete.
		e.do("GET", "/entity_users", pt, ent, nil, 200, &list)
		if len(list.Data) != 4 {
			t.Errorf("%d users, want 4", len(list.Data))
		}
		e.do("DELETE", "/entity_users/"+carol, pt, ent, nil, 204, nil)
		e.do("GET", "/entity_users/"+carol, pt, ent, nil, 404, nil)

		// Revocation and expiry.
		e.do("POST", "/auth/revoke", "", "", map[string]any{"client_id": creds.ID, "client_secret": creds.Secret, "token": bt}, 200, nil)
		e.do("GET", "/payables", bt, "", nil, 400, nil)
		e.do("GET", "/payables", at, "", nil, 200, nil)
		e.clock.offset.Add(int64(31 * time.Minute))
		b = e.do("GET", "/payables", at, "", nil, 400, nil)
		if message(b) == "" {
			t.Errorf("expired token: no Monite error message in %s", b)
		}
		e.do("GET", "/payables", "", "", nil, 401, nil)
	})
}
