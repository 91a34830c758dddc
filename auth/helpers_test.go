package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// clock is a settable clock for WithNow.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testDir is a Directory over a fixed map: user → (entity, partner).
type testDir map[model.UserID][2]string

func (d testDir) LookupEntityUser(_ context.Context, u model.UserID) (model.EntityID, model.PartnerID, error) {
	e, ok := d[u]
	if !ok {
		return "", "", ErrUnknownUser
	}
	return model.EntityID(e[0]), model.PartnerID(e[1]), nil
}

var defaultDir = testDir{
	"user-1":  {"entity-1", "partner-a"},
	"user-b1": {"entity-b", "partner-b"},
}

// fixture is a service on a memory store with a fake clock.
type fixture struct {
	t     *testing.T
	clock *clock
	store Store
	svc   *Service
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), store: NewMemoryStore()}
	f.svc = f.replica(opts...)
	return f
}

// replica starts another service on the same store and clock.
func (f *fixture) replica(opts ...Option) *Service {
	f.t.Helper()
	all := append([]Option{WithNow(f.clock.now), WithRevocationPoll(10 * time.Millisecond)}, opts...)
	s, err := New(context.Background(), f.store, defaultDir, all...)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (f *fixture) client(partner model.PartnerID, opts ...ClientOption) ClientCredentials {
	f.t.Helper()
	c, err := f.svc.CreateClient(context.Background(), partner, opts...)
	if err != nil {
		f.t.Fatalf("CreateClient: %v", err)
	}
	return c
}

func (f *fixture) partnerToken(c ClientCredentials) string {
	f.t.Helper()
	tok, err := f.svc.IssuePartnerToken(context.Background(), c)
	if err != nil {
		f.t.Fatalf("IssuePartnerToken: %v", err)
	}
	return tok.AccessToken
}

// reply is a decoded endpoint answer.
type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r reply) str(k string) string { s, _ := r.Body[k].(string); return s }

// do sends a POST (or method) with the body and content type to h.
func do(t *testing.T, h http.Handler, method, ctype, body string, hdr ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, "/auth/token", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	r := reply{Status: rec.Code, Header: rec.Header(), Raw: string(raw)}
	if err := json.Unmarshal(raw, &r.Body); err != nil {
		t.Fatalf("answer is not JSON: %q", raw)
	}
	return r
}

func jsonBody(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const ctJSON, ctForm = "application/json", "application/x-www-form-urlencoded"
