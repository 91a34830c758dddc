package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// TestUnrouted: a known path with another method answers 405 with an Allow
// header, an unknown path 404, both in Monite's error format and before
// authentication (routing does not depend on the database: SQLite only).
func TestUnrouted(t *testing.T) {
	e := newEnv(t, api.Config{DSN: filepath.Join(t.TempDir(), "routes.db")})
	_, pt := e.partner("partner-1")
	for _, tc := range []struct {
		method, path, token string
		want                int
		allow               string
	}{
		{"PUT", "/roles/x", pt, 405, "DELETE, GET, HEAD, PATCH"},
		{"POST", "/roles/x", pt, 405, "DELETE, GET, HEAD, PATCH"},
		{"PUT", "/roles/x", "", 405, "DELETE, GET, HEAD, PATCH"},
		{"DELETE", "/payables", pt, 405, "GET, HEAD, POST"},
		{"GET", "/payables/x/approve_payment_operation", pt, 405, "POST"},
		{"GET", "/entities/x/settings", pt, 405, "PATCH"},
		{"GET", "/nowhere", pt, 404, ""},
		{"PUT", "/nowhere", "", 404, ""},
		{"GET", "/", "", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, strings.NewReader("{}"))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body [200]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("Allow") != tc.allow ||
			resp.Header.Get("Content-Type") != "application/json" || message(body[:n]) == "" {
			t.Errorf("%s %s: %d, Allow %q, %s %s; want %d, Allow %q and a Monite error", tc.method, tc.path,
				resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body[:n], tc.want, tc.allow)
		}
	}
}
