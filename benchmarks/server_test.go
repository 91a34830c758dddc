package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
	"github.com/gatehouse-authz/gatehouse/model"
)

// serverFixture is the example server (examples/server/api) on a SQLite
// file, with a partner, an entity, a clerk role (payables: create, read), a
// user holding it and a payable the user created: GET /payables/{id} with
// the user's token is the request under load (authentication, entity,
// decision, and a SQLite read in the handler).
type serverFixture struct {
	srv      *api.Server
	path     string // GET path of the payable
	token    string // the entity user's access token
	latency  *latencies
	closeSrv func()
}

// latencies collects the decision latencies the example server logs
// through middleware.SlogHook (allowed decisions are logged at Debug).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) Enabled(_ context.Context, lv slog.Level) bool { return lv == slog.LevelDebug }
func (l *latencies) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l *latencies) WithGroup(string) slog.Handler                 { return l }

func (l *latencies) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "gatehouse: decision" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "latency" {
			l.mu.Lock()
			l.d = append(l.d, a.Value.Duration())
			l.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

// reset forgets what was collected.
func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

// quantile returns the q-quantile of the collected latencies (0 if none).
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	// Nearest rank: the smallest value with at least q of them at or
	// below it (p99 of 100 values is the 99th, not the largest).
	return s[max(0, min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1))]
}

func buildServer(dir string) (*serverFixture, error) {
	ctx := context.Background()
	lat := &latencies{}
	srv, err := api.New(ctx, api.Config{DSN: filepath.Join(dir, "server.db"), Logger: slog.New(lat)})
	if err != nil {
		return nil, err
	}
	fx := &serverFixture{srv: srv, latency: lat, closeSrv: func() { _ = srv.Close() }}
	h := srv.Handler()
	call := func(method, path, token, entity string, body any, want int) (map[string]any, error) {
		var buf bytes.Buffer
		if body != nil {
			if err := json.NewEncoder(&buf).Encode(body); err != nil {
				return nil, err
			}
		}
		r := httptest.NewRequest(method, path, &buf)
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if entity != "" {
			r.Header.Set(api.EntityHeader, entity)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, w.Code, want, w.Body)
		}
		out := map[string]any{}
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out, nil
	}
	id := func(m map[string]any, err error) (string, error) {
		if err != nil {
			return "", err
		}
		s, _ := m["id"].(string)
		if s == "" {
			return "", fmt.Errorf("no id in %v", m)
		}
		return s, nil
	}
	fail := func(err error) (*serverFixture, error) { fx.closeSrv(); return nil, err }

	creds, err := srv.CreateClient(ctx, model.PartnerID("partner-bench"))
	if err != nil {
		return fail(err)
	}
	form := func(extra map[string]any) map[string]any {
		m := map[string]any{"client_id": creds.ID, "client_secret": creds.Secret}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tok, err := call("POST", "/auth/token", "", "", form(map[string]any{"grant_type": "client_credentials"}), 200)
	if err != nil {
		return fail(err)
	}
	pt, _ := tok["access_token"].(string)
	ent, err := id(call("POST", "/entities", pt, "", map[string]any{"type": "organization", "email": "ap@example.com",
		"address":      map[string]any{"city": "Berlin", "country": "DE", "line1": "Street 1", "postal_code": "10115"},
		"organization": map[string]any{"legal_name": "Bench GmbH"}}, 201))
	if err != nil {
		return fail(err)
	}
	grant := func(a, p string) map[string]string { return map[string]string{"action_name": a, "permission": p} }
	clerk, err := id(call("POST", "/roles", pt, ent, map[string]any{"name": "Clerk", "permissions": map[string]any{"objects": []any{
		map[string]any{"object_type": "payable", "actions": []any{grant("create", "allowed"), grant("read", "allowed")}},
	}}}, 200))
	if err != nil {
		return fail(err)
	}
	user, err := id(call("POST", "/entity_users", pt, ent, map[string]any{"login": "bench", "first_name": "Bench", "role_id": clerk}, 200))
	if err != nil {
		return fail(err)
	}
	if tok, err = call("POST", "/auth/token", "", "", form(map[string]any{"grant_type": "entity_user", "entity_user_id": user}), 200); err != nil {
		return fail(err)
	}
	fx.token, _ = tok["access_token"].(string)
	pay, err := id(call("POST", "/payables", fx.token, "", map[string]any{"currency": "EUR", "total_amount": 100}, 200))
	if err != nil {
		return fail(err)
	}
	fx.path = "/payables/" + pay
	if _, err := call("GET", fx.path, fx.token, "", nil, 200); err != nil {
		return fail(err)
	}
	return fx, nil
}

// exampleServer builds the example server fixture for one benchmark.
func exampleServer(b *testing.B) *serverFixture {
	b.Helper()
	fx, err := buildServer(b.TempDir())
	if err != nil {
		b.Fatalf("example server: %v", err)
	}
	b.Cleanup(fx.closeSrv)
	return fx
}

// TestQuantileNearestRank: of 1..100 ms, p50 is 50 ms and p99 is 99 ms (not
// the largest value, as the first version gave).
func TestQuantileNearestRank(t *testing.T) {
	l := &latencies{}
	for i := 100; i >= 1; i-- {
		l.d = append(l.d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := l.quantile(q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
}
