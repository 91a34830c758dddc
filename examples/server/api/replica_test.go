package api_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
	"github.com/gatehouse-authz/gatehouse/model"
)

// sharedDatabases runs fn with a function that builds the configs of
// servers sharing one database: a SQLite file, and PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_DSN is set.
func sharedDatabases(t *testing.T, fn func(t *testing.T, cfg func() api.Config)) {
	t.Run("sqlite", func(t *testing.T) {
		dsn := filepath.Join(t.TempDir(), "shared.db")
		fn(t, func() api.Config { return api.Config{DSN: dsn} })
	})
	t.Run("postgres", func(t *testing.T) {
		_, dsn, prefix := postgresTables(t, "rep_")
		fn(t, func() api.Config { return api.Config{DSN: dsn, TablePrefix: prefix} })
	})
}

// TestReplicas runs two servers with watchers on one database, and a third
// without: a change made through one replica reaches the other within the
// poll interval, and a write through the other sees it at once; the server
// without a watcher keeps deciding from the policy it loaded.
func TestReplicas(t *testing.T) {
	sharedDatabases(t, func(t *testing.T, cfg func() api.Config) {
		watch := func() api.Config {
			c := cfg()
			c.Watch, c.PollInterval = true, 20*time.Millisecond
			return c
		}
		a := newEnv(t, watch())
		b := newEnv(t, watch())
		if a.srv.Watcher == nil || b.srv.Watcher == nil {
			t.Fatal("Config.Watch started no watcher")
		}
		stale := newEnv(t, cfg())
		if stale.srv.Watcher != nil {
			t.Fatal("a watcher without Config.Watch")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// caughtUp waits until e has applied every change made through from.
		caughtUp := func(e, from *env) {
			t.Helper()
			if err := e.srv.Watcher.Wait(ctx, from.srv.Engine.Revision()); err != nil {
				t.Fatalf("replica did not catch up: %v", err)
			}
		}

		creds, pt := a.partner("partner-1") // clients and signing keys are shared
		ent := newEntity(a, pt)
		// A write through b catches up first: no wait needed.
		viewer := b.id("POST", "/roles", pt, ent, role("Viewer", "payable.read=allowed"), 200)
		user := b.id("POST", "/entity_users", pt, ent, map[string]any{"login": "ann", "first_name": "Ann", "role_id": viewer}, 200)
		caughtUp(a, b) // a issues the user's token: it must know the user
		ut := a.userToken(creds, user)
		a.do("GET", "/payables", ut, "", nil, 200, nil)
		// A read through b follows within the poll interval.
		a.do("PATCH", "/roles/"+viewer, pt, ent, map[string]any{"permissions": perms("payable.create=allowed")}, 200, nil)
		caughtUp(b, a)
		b.do("GET", "/payables", ut, "", nil, 403, nil)
		b.do("POST", "/payables", ut, "", map[string]any{"currency": "EUR"}, 200, nil)
		// The replica without a watcher still has the policy it loaded.
		if _, err := stale.srv.Engine.GetEntity(ctx, model.EntityID(ent)); err == nil {
			t.Error("the replica without a watcher knows the new entity")
		}
		stale.do("GET", "/payables", pt, ent, nil, 403, nil)

		// Removing the entity on one replica removes it on the other.
		b.do("DELETE", "/entities/"+ent, pt, "", nil, 204, nil)
		caughtUp(a, b)
		a.do("GET", "/payables", pt, ent, nil, 403, nil)
		a.do("POST", "/payables", ut, "", map[string]any{"currency": "EUR"}, 403, nil)
		if lag := a.srv.Watcher.Behind(); lag != nil {
			t.Errorf("replica a: %v", lag)
		}
	})
}
