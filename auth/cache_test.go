package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCacheBoundedAndExpiring(t *testing.T) {
	c := newTokenCache(64)
	now := time.Now().UnixNano()
	for i := range 1000 {
		c.put(fmt.Sprint("token-", i), Principal{TokenID: fmt.Sprint(i)}, now+int64(time.Minute), now)
	}
	if n := c.len(); n > 64 {
		t.Fatalf("cache holds %d entries, bound 64", n)
	}
	c.put("x", Principal{TokenID: "x"}, now+10, now)
	if p, ok := c.get("x", now+9); !ok || p.TokenID != "x" {
		t.Fatal("live entry missing")
	}
	if _, ok := c.get("y", now+9); ok {
		t.Fatal("another token served from the cache")
	}
	if _, ok := c.get("x", now+10); ok {
		t.Fatal("entry served at its expiry")
	}
	if newTokenCache(0) != nil {
		t.Fatal("size 0 must disable the cache")
	}
}

func TestCacheUsedAndNeverPastExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, WithTokenTTL(time.Minute), WithLeeway(0))
	tok := f.partnerToken(f.client("partner-a"))
	p1, err := f.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if f.svc.cache.len() != 1 {
		t.Fatalf("cache has %d entries", f.svc.cache.len())
	}
	p2, _ := f.svc.Authenticate(ctx, tok)
	if p1.TokenID != p2.TokenID {
		t.Fatal("cached principal differs")
	}
	f.clock.advance(time.Minute)
	if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("cached token served at expiry: %v", err)
	}
	// A different token string (even for the same claims) is not a hit.
	if _, err := f.svc.Authenticate(ctx, tok+"x"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("altered token: %v", err)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t, WithCacheSize(0))
	tok := f.partnerToken(f.client("partner-a"))
	for range 2 {
		if _, err := f.svc.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Revoke(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(context.Background(), tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatal(err)
	}
}

// Close stops the poller: no goroutine of the package is left, and
// Authenticate fails closed.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	ctx := context.Background()
	var svcs []*Service
	for range 3 {
		s, err := New(ctx, NewMemoryStore(), nil, WithRevocationPoll(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	if !pollerRunning() {
		t.Fatal("no poller found: the check below could not fail")
	}
	c, _ := svcs[0].CreateClient(ctx, "partner-a")
	tok, _ := svcs[0].IssuePartnerToken(ctx, c)
	for _, s := range svcs {
		_ = s.Close()
		_ = s.Close() // idempotent
	}
	if pollerRunning() {
		t.Fatal("poller still running after Close")
	}
	if _, err := svcs[0].Authenticate(ctx, tok.AccessToken); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

func pollerRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "created by github.com/gatehouse-authz/gatehouse/auth.New")
		}
		buf = make([]byte, 2*len(buf))
	}
}
