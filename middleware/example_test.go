package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// A partner with two entities; Ann may read payables in entity "acme" but
// approve only the ones she created.
func Example() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	_, _ = eng.CreateEntity(ctx, "partner1", "acme")
	_, _ = eng.CreateEntity(ctx, "partner1", "globex")
	_, _ = eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "clerk", Name: "Clerk", Permissions: model.Permissions{
		{Object: "payable", Action: "read"}:    model.Allowed,
		{Object: "payable", Action: "approve"}: model.AllowedForOwn,
	}})
	_, _ = eng.AddUser(ctx, "acme", "ann", "clerk")

	tokens, _ := auth.New(ctx, auth.NewMemoryStore(), eng)
	defer tokens.Close()
	client, _ := tokens.CreateClient(ctx, "partner1")
	partner, _ := tokens.IssuePartnerToken(ctx, client)
	ann, _ := tokens.IssueEntityUserToken(ctx, client, "ann")

	mw, _ := middleware.New(middleware.Config{Authenticator: tokens, Engine: eng, EntityHeader: "x-monite-entity-id"})
	creators := map[string]model.Subject{"pay1": model.User("ann"), "pay2": model.Partner("partner1")}
	owner := func(r *http.Request) (model.Subject, error) {
		if s, ok := creators[r.PathValue("id")]; ok {
			return s, nil
		}
		return model.Subject{}, middleware.ErrNotFound
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, _ := middleware.EntityFromContext(r.Context())
		s, _ := middleware.ScopeFromContext(r.Context())
		fmt.Fprintf(w, "entity %s, scope %s", e, s)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /payables", mw.Require("payable", "read")(ok))
	mux.Handle("POST /payables/{id}/approve", mw.RequireOwned("payable", "approve", owner)(ok))
	mux.Handle("POST /entities", mw.PartnerOnly()(ok))

	send := func(method, path, token, entity string) {
		r := httptest.NewRequest(method, path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if entity != "" {
			r.Header.Set("x-monite-entity-id", entity)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Printf("%s %s: %d %s\n", method, path, w.Code, w.Body)
		} else {
			fmt.Printf("%s %s: %d\n", method, path, w.Code)
		}
	}
	send("GET", "/payables", "", "")
	send("GET", "/payables", partner.AccessToken, "globex")
	send("GET", "/payables", partner.AccessToken, "")
	send("GET", "/payables", ann.AccessToken, "")
	send("GET", "/payables", ann.AccessToken, "globex")
	send("POST", "/payables/pay1/approve", ann.AccessToken, "")
	send("POST", "/payables/pay2/approve", ann.AccessToken, "")
	send("POST", "/entities", ann.AccessToken, "")
	// Output:
	// GET /payables: 401
	// GET /payables: 200 entity globex, scope all
	// GET /payables: 400
	// GET /payables: 200 entity acme, scope all
	// GET /payables: 403
	// POST /payables/pay1/approve: 200 entity acme, scope own
	// POST /payables/pay2/approve: 403
	// POST /entities: 403
}

// FilterScope turns the list scope of a request into a query condition.
// Ann's role lets her read only the payables she created.
func ExampleFilterScope() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	_, _ = eng.CreateEntity(ctx, "partner1", "acme")
	_, _ = eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "clerk", Name: "Clerk", Permissions: model.Permissions{
		{Object: "payable", Action: "read"}: model.AllowedForOwn,
	}})
	_, _ = eng.AddUser(ctx, "acme", "ann", "clerk")
	mw, _ := middleware.New(middleware.Config{Authenticator: noTokens{}, Engine: eng})
	db, _ := gorm.Open(sqlite.Open(":memory:"), &gorm.Config{Logger: logger.Discard})

	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cols := middleware.Columns{Entity: "entity_id", Owner: "created_by"}
		fmt.Println(db.ToSQL(func(tx *gorm.DB) *gorm.DB {
			return tx.Table("payables").Scopes(middleware.FilterScope(r.Context(), cols)).Find(&[]map[string]any{})
		}))
	})
	// A principal from NewContext stands for an authenticated token here.
	r := httptest.NewRequest("GET", "/payables", nil)
	r = r.WithContext(middleware.NewContext(ctx, auth.Principal{Kind: auth.KindEntityUser, PartnerID: "partner1", EntityID: "acme", UserID: "ann"}))
	mw.Require("payable", "read")(list).ServeHTTP(httptest.NewRecorder(), r)
	// Output: SELECT * FROM `payables` WHERE `entity_id` = "acme" AND `created_by` = "user:ann"
}

// noTokens refuses every token.
type noTokens struct{}

func (noTokens) Authenticate(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, auth.ErrInvalidToken
}

// Routes declares a whole API in one table and guards an http.ServeMux with
// it: routes without an action take their method's default, and a
// registered route missing from the table is refused. A route on one object
// declares how to find its creator (Owner), so that a role allowed the
// action only on its own objects gets it on those alone.
func ExampleMiddleware_Routes() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	_, _ = eng.CreateEntity(ctx, "partner1", "acme")
	_, _ = eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "viewer", Name: "Viewer", Permissions: model.Permissions{
		{Object: "payable", Action: "read"}: model.Allowed,
	}})
	_, _ = eng.AddUser(ctx, "acme", "ann", "viewer")
	mw, _ := middleware.New(middleware.Config{Authenticator: noTokens{}, Engine: eng})
	creators := map[string]model.Subject{"p1": model.User("bob")} // the application's payables
	creator := func(r *http.Request) (model.Subject, error) {
		if s, ok := creators[r.PathValue("id")]; ok {
			return s, nil
		}
		return model.Subject{}, middleware.ErrNotFound
	}

	guard, err := mw.Routes(middleware.Routes{
		{Pattern: "GET /payables", Object: "payable"},  // read
		{Pattern: "POST /payables", Object: "payable"}, // create
		{Pattern: "POST /payables/{id}/approve", Object: "payable", Action: "approve", Owner: creator},
		{Pattern: "POST /entities", PartnerOnly: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux := http.NewServeMux()
	for _, p := range []string{"GET /payables", "POST /payables", "POST /payables/{id}/approve", "POST /entities", "GET /reports"} {
		mux.Handle(p, ok)
	}
	h := guard(mux)

	ann := auth.Principal{Kind: auth.KindEntityUser, PartnerID: "partner1", EntityID: "acme", UserID: "ann"}
	for _, req := range []struct{ method, path string }{
		{"GET", "/payables"}, {"POST", "/payables"}, {"POST", "/payables/p1/approve"}, {"POST", "/entities"}, {"GET", "/reports"},
	} {
		// A principal from NewContext stands for an authenticated token.
		r := httptest.NewRequest(req.method, req.path, nil).WithContext(middleware.NewContext(ctx, ann))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(req.method, req.path, w.Code)
	}
	// Output:
	// GET /payables 200
	// POST /payables 403
	// POST /payables/p1/approve 403
	// POST /entities 403
	// GET /reports 500
}
