package middleware_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-authz/gatehouse/middleware"
)

var errStale = errors.New("replica behind: revision 7 of 9 applied")

// TestFresh: while Config.Fresh reports the policies stale, every guard
// (and Entity, which reads the entity's owners from the engine) answers 503 with Retry-After (not a decision from the stale state) and
// logs why without telling the client; once fresh, requests are decided
// again.
func TestFresh(t *testing.T) {
	wd := newWorld(t)
	var stale atomic.Bool
	logs := &syncBuffer{}
	h, _ := wd.mux(t, middleware.Config{Logger: debugLogger(logs), Fresh: func() error {
		if stale.Load() {
			return errStale
		}
		return nil
	}})
	tests := []struct {
		name, method, path, token string
		fresh                     int
	}{
		{"user list", "GET", "/payables", tokU1, 200},
		{"user owned object", "GET", "/payables/o2", tokU2, 200},
		{"partner", "GET", "/payables", tokP1, 200},
		{"partner only", "POST", "/entities", tokP1, 200},
		{"entity route", "GET", "/entity", tokU1, 200},
		{"denied when fresh", "GET", "/payables", tokU4, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"X-Entity-Id": "e1"}
			stale.Store(true)
			w := do(h, tt.method, tt.path, "Bearer "+tt.token, hdr)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
				t.Fatalf("stale: status %d, Retry-After %q, body %s", w.Code, w.Header().Get("Retry-After"), w.Body)
			}
			if strings.Contains(w.Body.String(), "revision") {
				t.Errorf("the cause reached the client: %s", w.Body)
			}
			stale.Store(false)
			if w := do(h, tt.method, tt.path, "Bearer "+tt.token, hdr); w.Code != tt.fresh {
				t.Fatalf("fresh: status %d, want %d: %s", w.Code, tt.fresh, w.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), errStale.Error()) {
		t.Errorf("the stale state was not logged:\n%s", logs)
	}
}
