package middleware_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
)

// realAuth starts an *auth.Service on a memory store with the world's engine
// as its directory and a clock the test moves.
func realAuth(t testing.TB, wd *world, opts ...auth.Option) (*auth.Service, *atomic.Int64) {
	t.Helper()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	opts = append([]auth.Option{auth.WithNow(func() time.Time { return time.Unix(0, now.Load()) })}, opts...)
	svc, err := auth.New(context.Background(), auth.NewMemoryStore(), wd.eng, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc, &now
}

func TestWithAuthService(t *testing.T) {
	ctx := context.Background()
	wd := newWorld(t)
	logs := &syncBuffer{}
	svc, now := realAuth(t, wd, auth.WithLogger(debugLogger(logs)))
	creds, err := svc.CreateClient(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	limited, err := svc.CreateClient(ctx, "p1", auth.WithAPIs("receivable"))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(c auth.ClientCredentials, user string) string {
		t.Helper()
		var tok auth.Token
		var err error
		if user == "" {
			tok, err = svc.IssuePartnerToken(ctx, c)
		} else {
			tok, err = svc.IssueEntityUserToken(ctx, c, "u2")
		}
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	partner, user, lim, doomed := issue(creds, ""), issue(creds, "u2"), issue(limited, ""), issue(creds, "")
	userLim, userDoomed := issue(limited, "u2"), issue(creds, "u2")
	mux, _ := wd.mux(t, middleware.Config{Authenticator: svc, Logger: debugLogger(logs), OnDecision: middleware.SlogHook(debugLogger(logs))})
	monite, _ := wd.mux(t, middleware.Config{Authenticator: svc, ErrorWriter: middleware.WriteMonite, Logger: debugLogger(logs)})
	e1 := map[string]string{"X-Entity-Id": "e1"}
	e3 := map[string]string{"X-Entity-Id": "e3"}
	check := func(h http.Handler, method, path, tok string, hd map[string]string, want int) *responseRecorder {
		t.Helper()
		w := do(h, method, path, "Bearer "+tok, hd)
		if w.Code != want {
			t.Fatalf("%s %s: %d, want %d (%s)", method, path, w.Code, want, w.Body)
		}
		return w
	}
	for range 2 { // the second round hits the token cache
		check(mux, "GET", "/payables", partner, e1, 200)
		check(mux, "GET", "/payables", partner, e3, 403)
		check(mux, "GET", "/payables", partner, nil, 400)
		check(mux, "GET", "/payables/o2", user, nil, 200)
		check(mux, "GET", "/payables/o1", user, nil, 403)
		check(mux, "GET", "/payables", user, map[string]string{"X-Entity-Id": "e2"}, 403)
		check(mux, "POST", "/entities", user, nil, 403)
		check(mux, "GET", "/payables", lim, e1, 403)
		check(mux, "GET", "/payables", userLim, nil, 403)
		check(mux, "GET", "/payables", userDoomed, nil, 200)
		check(mux, "GET", "/payables", partner+"x", e1, 401)
	}
	for _, tok := range []string{doomed, userDoomed} {
		if err := svc.Revoke(ctx, tok); err != nil {
			t.Fatal(err)
		}
		w := check(mux, "GET", "/payables", tok, e1, 401)
		if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) || !strings.Contains(w.Body.String(), string(middleware.CodeRevokedToken)) {
			t.Errorf("revoked: %q %s", got, w.Body)
		}
		if w := check(monite, "GET", "/payables", tok, e1, 400); w.Header().Get("WWW-Authenticate") == "" || !strings.Contains(w.Body.String(), `"message"`) {
			t.Errorf("Monite's 400 for a revoked token: %q %s", w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	var w *responseRecorder
	now.Add(int64(time.Hour))
	w = check(mux, "GET", "/payables", partner, e1, 401)
	if !strings.Contains(w.Header().Get("WWW-Authenticate"), "expired") || !strings.Contains(w.Body.String(), string(middleware.CodeExpiredToken)) {
		t.Errorf("expired: %q %s", w.Header().Get("WWW-Authenticate"), w.Body)
	}
	w = check(mux, "GET", "/payables", user, nil, 401)
	if !strings.Contains(w.Body.String(), string(middleware.CodeExpiredToken)) {
		t.Errorf("expired user token: %s", w.Body)
	}
	check(monite, "GET", "/payables", user, nil, 400)
	check(monite, "GET", "/payables", partner, e1, 400)

	out := logs.String()
	if !strings.Contains(out, "gatehouse: decision") {
		t.Fatal("no decision was logged")
	}
	for _, secret := range []string{partner, user, lim, doomed, userLim, userDoomed, creds.Secret, limited.Secret} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a token or secret")
		}
		// Nor any of its signature.
		if i := strings.LastIndexByte(secret, '.'); i > 0 && strings.Contains(out, secret[i+1:]) {
			t.Errorf("the log contains a token signature")
		}
	}
}

func TestDecisionHook(t *testing.T) {
	wd := newWorld(t)
	var got []middleware.DecisionEvent
	mux, _ := wd.mux(t, middleware.Config{OnDecision: func(_ context.Context, ev middleware.DecisionEvent) { got = append(got, ev) }})
	do(mux, "GET", "/payables/o2", "Bearer "+tokU2, nil)
	do(mux, "GET", "/payables/o1", "Bearer "+tokU2, nil)
	do(mux, "GET", "/payables", "Bearer "+tokP2, map[string]string{"X-Entity-Id": "e1"})
	do(mux, "GET", "/payables", "Bearer "+tokU3, nil)
	do(mux, "POST", "/entities", "Bearer "+tokU1, nil)
	do(mux, "GET", "/payables", "", nil) // no decision: not authenticated
	if len(got) != 5 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	ev := got[0]
	if !ev.Allowed || ev.Status != 200 || ev.Subject.String() != "user:u2" || ev.Entity != "e1" || ev.Object != "payable" ||
		ev.Action != "read" || ev.Owner.String() != "user:u2" || ev.Scope.String() != "own" || ev.Role != "own" || ev.ViaDefault || ev.Latency <= 0 || ev.Reason == "" {
		t.Errorf("allowed event %+v", ev)
	}
	if ev := got[1]; ev.Allowed || ev.Status != 403 || ev.Owner.String() != "user:u1" || ev.Role != "own" {
		t.Errorf("not-owner event %+v", ev)
	}
	if ev := got[2]; ev.Allowed || ev.Status != 403 || ev.Subject.String() != "partner:p2" || ev.Reason != "partner does not own the entity" {
		t.Errorf("cross-partner event %+v", ev)
	}
	if ev := got[3]; ev.Allowed || ev.Role != "none" || !ev.ViaDefault {
		t.Errorf("default-role event %+v", ev)
	}
	if ev := got[4]; ev.Allowed || ev.Reason != "partner-only operation" {
		t.Errorf("partner-only event %+v", ev)
	}
}
