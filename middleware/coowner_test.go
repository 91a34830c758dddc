package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// ruleStore is a read-only policy store of fixed rules.
type ruleStore []model.Rule

func (s ruleStore) Load(_ context.Context, fn func(model.Rule) error) error {
	for _, r := range s {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (ruleStore) Commit(context.Context, *policy.Change) error { return errors.New("read-only") }

// TestCoOwnedEntity: an entity that stored rules (written by another tool)
// give two owners lets either partner act in it, in the middleware as in
// Decide; a third partner is refused. The middleware used to let only the
// first owner in.
func TestCoOwnedEntity(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.WithStore(ruleStore{rules.Owner("p1", "e1"), rules.Owner("p2", "e1")}))
	if err != nil {
		t.Fatal(err)
	}
	wd := &world{eng: eng, auth: &fakeAuth{principals: map[string]auth.Principal{
		"tok-a": partnerP("p1"), "tok-b": partnerP("p2"), "tok-c": partnerP("p3"),
	}}}
	h, _ := wd.mux(t, middleware.Config{})
	for _, tc := range []struct {
		tok     string
		partner model.PartnerID
		want    int
	}{{"tok-a", "p1", 200}, {"tok-b", "p2", 200}, {"tok-c", "p3", 403}} {
		d := eng.Decide(&policy.Request{Subject: model.Partner(tc.partner), Entity: "e1", Object: "payable", Action: "read"})
		if d.Allowed != (tc.want == 200) {
			t.Fatalf("Decide for %s: allowed %v, want status %d", tc.partner, d.Allowed, tc.want)
		}
		for _, path := range []string{"/payables", "/entity"} {
			if w := do(h, "GET", path, "Bearer "+tc.tok, map[string]string{middleware.DefaultEntityHeader: "e1"}); w.Code != tc.want {
				t.Errorf("GET %s as %s: status %d, want %d: %s", path, tc.partner, w.Code, tc.want, w.Body)
			}
		}
	}
}
