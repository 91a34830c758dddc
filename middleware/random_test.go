package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// payableRow is a stored payable; its creator is stored as
// model.Subject.String().
type payableRow struct {
	ID        int    `gorm:"primaryKey"`
	EntityID  string `gorm:"index"`
	CreatedBy string
}

func (payableRow) TableName() string { return "payables" }

// randomWorld is a random platform: partners, entities, roles with random
// payable permissions, users with random roles or none, default roles, and
// payables created by random subjects, in SQLite.
type randomWorld struct {
	eng      *policy.Engine
	db       *gorm.DB
	auth     *fakeAuth
	subjects []auth.Principal
	entities []model.EntityID // with some unknown ones
	rows     map[int]payableRow
}

var payableActions = []model.Action{"read", "create", "update", "approve"}

func newRandomWorld(t *testing.T, rng *rand.Rand) *randomWorld {
	t.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "db.sqlite")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&payableRow{}); err != nil {
		t.Fatal(err)
	}
	w := &randomWorld{eng: eng, db: db, auth: &fakeAuth{principals: map[string]auth.Principal{}}, rows: map[int]payableRow{}}
	partners := []model.PartnerID{"p1", "p2", "u1"} // "u1" is also a user id: kinds never collide
	owner := map[model.EntityID]model.PartnerID{}
	roles := map[model.EntityID][]model.RoleID{}
	for i := range 6 {
		e := model.EntityID(fmt.Sprintf("e%d", i+1))
		p := partners[rng.IntN(len(partners))]
		if _, err := eng.CreateEntity(ctx, p, e); err != nil {
			t.Fatal(err)
		}
		owner[e] = p
		w.entities = append(w.entities, e)
		for j := range rng.IntN(4) {
			perms := model.Permissions{}
			for _, a := range payableActions {
				if p := model.Permission(rng.IntN(3)); p != model.NotAllowed {
					perms[model.Key{Object: "payable", Action: a}] = p
				}
			}
			r, err := eng.CreateRole(ctx, e, policy.RoleSpec{ID: model.RoleID(fmt.Sprintf("%s-r%d", e, j)), Name: fmt.Sprintf("r%d", j), Permissions: perms})
			if err != nil {
				t.Fatal(err)
			}
			roles[e] = append(roles[e], r.ID)
		}
		if len(roles[e]) > 0 && rng.IntN(2) == 0 {
			if err := eng.SetDefaultRole(ctx, e, roles[e][rng.IntN(len(roles[e]))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range partners {
		w.subjects = append(w.subjects, partnerP(p))
	}
	for i := range 16 {
		u := model.UserID(fmt.Sprintf("u%d", i+1))
		if i == 15 {
			u = "p1" // a user id equal to a partner id
		}
		e := w.entities[rng.IntN(len(w.entities))]
		var role model.RoleID
		if rs := roles[e]; len(rs) > 0 && rng.IntN(3) > 0 {
			role = rs[rng.IntN(len(rs))]
		}
		if _, err := eng.AddUser(ctx, e, u, role); err != nil {
			t.Fatal(err)
		}
		w.subjects = append(w.subjects, userP(owner[e], e, u))
	}
	// A user whose entity was removed since its token was issued.
	w.subjects = append(w.subjects, userP("p1", "gone", "u99"))
	for i, p := range w.subjects {
		w.auth.principals["t"+strconv.Itoa(i)] = p
	}
	w.entities = append(w.entities, "e404", "gone")
	creators := []model.Subject{model.Partner("p9"), model.User("nobody")}
	for _, p := range w.subjects {
		creators = append(creators, p.Subject())
	}
	var rows []payableRow
	for i := range 300 {
		r := payableRow{ID: i + 1, EntityID: string(w.entities[rng.IntN(len(w.entities))]), CreatedBy: creators[rng.IntN(len(creators))].String()}
		rows = append(rows, r)
		w.rows[r.ID] = r
	}
	if err := db.CreateInBatches(rows, 100).Error; err != nil {
		t.Fatal(err)
	}
	return w
}

// owner is the owner lookup of the payables table, inside the request's
// entity.
func (w *randomWorld) owner(r *http.Request) (model.Subject, error) {
	e, _ := middleware.EntityFromContext(r.Context())
	var row payableRow
	err := w.db.WithContext(r.Context()).Select("created_by").Where("id = ? AND entity_id = ?", r.PathValue("id"), string(e)).Take(&row).Error
	if err != nil {
		return model.Subject{}, err
	}
	return model.ParseSubject(row.CreatedBy)
}

// answer is what the test API returns.
type answer struct {
	Entity model.EntityID
	IDs    []int
}

func (w *randomWorld) handler(t *testing.T, mw *middleware.Middleware) http.Handler {
	list := func(rw http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var ids []int
		if err := w.db.WithContext(ctx).Model(&payableRow{}).Scopes(middleware.FilterScope(ctx, middleware.Columns{})).Order("id").Pluck("id", &ids).Error; err != nil {
			t.Error(err)
		}
		e, _ := middleware.EntityFromContext(ctx)
		_ = json.NewEncoder(rw).Encode(answer{e, ids})
	}
	one := func(rw http.ResponseWriter, r *http.Request) {
		e, _ := middleware.EntityFromContext(r.Context())
		var row payableRow
		if err := w.db.Where("id = ? AND entity_id = ?", r.PathValue("id"), string(e)).Take(&row).Error; err != nil {
			http.NotFound(rw, r)
			return
		}
		_ = json.NewEncoder(rw).Encode(answer{e, []int{row.ID}})
	}
	created := func(rw http.ResponseWriter, r *http.Request) {
		e, _ := middleware.EntityFromContext(r.Context())
		_ = json.NewEncoder(rw).Encode(answer{Entity: e})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /payables", mw.Require("payable", "read")(http.HandlerFunc(list)))
	mux.Handle("POST /payables", mw.Require("payable", "create")(http.HandlerFunc(created)))
	mux.Handle("GET /payables/{id}", mw.RequireOwned("payable", "read", w.owner)(http.HandlerFunc(one)))
	mux.Handle("PATCH /payables/{id}", mw.RequireOwned("payable", "update", w.owner)(http.HandlerFunc(one)))
	mux.Handle("POST /payables/{id}/approve", mw.RequireOwned("payable", "approve", w.owner)(http.HandlerFunc(one)))
	mux.Handle("POST /entities", mw.PartnerOnly()(http.HandlerFunc(created)))
	return mux
}

// inRealm reports whether p may act in entity e at all: a partner in its own
// entities, a user in its own entity.
func (w *randomWorld) inRealm(p auth.Principal, e model.EntityID) bool {
	if p.Kind == auth.KindEntityUser {
		return e == p.EntityID
	}
	owns, err := w.eng.OwnsEntity(context.Background(), p.PartnerID, e)
	return err == nil && owns
}

// TestFilterScopeProperty: for random policies, rows and subjects, the list
// endpoint (Require + FilterScope in SQLite) returns exactly the rows of the
// request's entity that eng.Decide allows with Owner = the row's creator.
func TestFilterScopeProperty(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			w := newRandomWorld(t, rng)
			mw, err := middleware.New(middleware.Config{Authenticator: w.auth, Engine: w.eng})
			if err != nil {
				t.Fatal(err)
			}
			h := w.handler(t, mw)
			var ok, refused int
			for i, p := range w.subjects {
				for _, hdr := range append([]model.EntityID{""}, w.entities...) {
					hd := map[string]string{}
					if hdr != "" {
						hd["X-Entity-Id"] = string(hdr)
					}
					resp := do(h, "GET", "/payables", "Bearer t"+strconv.Itoa(i), hd)
					served := hdr
					if served == "" && p.Kind == auth.KindEntityUser {
						served = p.EntityID
					}
					var want []int
					for id := 1; id <= len(w.rows); id++ {
						row := w.rows[id]
						owner, _ := model.ParseSubject(row.CreatedBy)
						if model.EntityID(row.EntityID) == served && w.eng.Decide(&policy.Request{Subject: p.Subject(), Entity: served,
							Object: "payable", Action: "read", Owner: owner}).Allowed {
							want = append(want, id)
						}
					}
					if resp.Code != 200 {
						refused++
						if len(want) > 0 {
							t.Errorf("%s in %q: %d, but the engine allows rows %v", p.Subject(), hdr, resp.Code, want)
						}
						continue
					}
					ok++
					var a answer
					if err := json.Unmarshal(resp.Body.Bytes(), &a); err != nil {
						t.Fatal(err)
					}
					if a.Entity != served || !w.inRealm(p, served) {
						t.Errorf("%s in %q: served entity %q", p.Subject(), hdr, a.Entity)
					}
					if !slices.Equal(a.IDs, want) {
						t.Errorf("%s in %q: rows %v, want %v", p.Subject(), hdr, a.IDs, want)
					}
				}
			}
			if ok == 0 || refused == 0 {
				t.Errorf("degenerate run: %d allowed, %d refused", ok, refused)
			}
		})
	}
}

// TestNoLeaks sends random requests (random token, entity header, route and
// object, including other tenants' objects) and checks that every 2xx answer
// is one the engine allows for a subject inside its own partner or entity,
// and only shows objects of that entity that the engine allows it.
func TestNoLeaks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := newRandomWorld(t, rng)
	mw, err := middleware.New(middleware.Config{Authenticator: w.auth, Engine: w.eng})
	if err != nil {
		t.Fatal(err)
	}
	h := w.handler(t, mw)
	type route struct {
		method, path string
		action       model.Action
		single       bool
	}
	routes := []route{
		{"GET", "/payables", "read", false},
		{"POST", "/payables", "create", false},
		{"GET", "/payables/%d", "read", true},
		{"PATCH", "/payables/%d", "update", true},
		{"POST", "/payables/%d/approve", "approve", true},
		{"POST", "/entities", "", false},
	}
	statuses := map[int]int{}
	for range 2000 {
		rt := routes[rng.IntN(len(routes))]
		tok := rng.IntN(len(w.subjects) + 1) // the last one is unknown
		p := w.subjects[min(tok, len(w.subjects)-1)]
		hd := map[string]string{}
		switch n := rng.IntN(4); {
		case n == 0: // no header
		case n == 1 && p.Kind == auth.KindEntityUser:
			hd["X-Entity-Id"] = string(p.EntityID)
		default:
			hd["X-Entity-Id"] = string(w.entities[rng.IntN(len(w.entities))])
		}
		id := rng.IntN(len(w.rows)+20) + 1
		path := rt.path
		if rt.single {
			path = fmt.Sprintf(rt.path, id)
		}
		resp := do(h, rt.method, path, "Bearer t"+strconv.Itoa(tok), hd)
		statuses[resp.Code]++
		if resp.Code/100 != 2 {
			continue
		}
		if tok == len(w.subjects) {
			t.Fatalf("unknown token got %d", resp.Code)
		}
		var a answer
		if err := json.Unmarshal(resp.Body.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		if rt.action == "" { // partner-only
			if p.Kind != auth.KindPartner {
				t.Errorf("%s got partner-only %s", p.Subject(), path)
			}
			continue
		}
		if !w.inRealm(p, a.Entity) {
			t.Errorf("LEAK: %s %s as %s served entity %q", rt.method, path, p.Subject(), a.Entity)
		}
		if !w.eng.Decide(&policy.Request{Subject: p.Subject(), Entity: a.Entity, Object: "payable", Action: rt.action}).Allowed {
			t.Errorf("LEAK: %s %s as %s in %q: the engine denies", rt.method, path, p.Subject(), a.Entity)
		}
		for _, id := range a.IDs {
			row := w.rows[id]
			owner, _ := model.ParseSubject(row.CreatedBy)
			if model.EntityID(row.EntityID) != a.Entity || !w.eng.Decide(&policy.Request{Subject: p.Subject(), Entity: a.Entity,
				Object: "payable", Action: rt.action, Owner: owner}).Allowed {
				t.Errorf("LEAK: %s %s as %s in %q returned row %+v", rt.method, path, p.Subject(), a.Entity, row)
			}
		}
	}
	t.Logf("statuses: %v", statuses)
	for _, s := range []int{200, 400, 401, 403, 404} {
		if statuses[s] == 0 {
			t.Errorf("no %d in the run: %v", s, statuses)
		}
	}
}
