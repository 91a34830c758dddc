package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

func TestCommitAnswerLostPostgres(t *testing.T) { runCommitAnswerLost(t, postgresBackend(t)) }
func TestCommitAnswerLostMySQL(t *testing.T)    { runCommitAnswerLost(t, mysqlBackend(t)) }

// runCommitAnswerLost: the connection drops after the server received a
// COMMIT and before its answer came back, so the change is committed while
// the replica that made it was told it failed. Its engine did not publish
// it, and the watcher must not skip it as its own: after a Sync the
// replica holds the change, as the other replicas do. A Sync that runs
// while the COMMIT's outcome is not known yet is only exercised (its
// result is logged, not checked).
func runCommitAnswerLost(t *testing.T, b backend) {
	ownerRule := model.Rule{PType: "g2", Values: []string{"partner:p1", "entity:e1"}}
	paths := []struct {
		name   string
		commit func(ctx context.Context, st *Store, eng *policy.Engine) error
	}{
		{"Lock", func(ctx context.Context, _ *Store, eng *policy.Engine) error {
			_, err := eng.CreateEntity(ctx, "p1", "e1")
			return err
		}},
		{"InTransaction", func(ctx context.Context, st *Store, eng *policy.Engine) error {
			return st.InTransaction(ctx, func(ctx context.Context, _ *gorm.DB) error {
				_, err := eng.CreateEntity(ctx, "p1", "e1")
				return err
			})
		}},
		{"StoreCommit", func(ctx context.Context, st *Store, _ *policy.Engine) error {
			return st.Commit(ctx, &policy.Change{Op: "entity.create", Entity: "e1", Add: []model.Rule{ownerRule}})
		}},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			ctx := context.Background()
			proxy, stA, stB, engA, engB := proxiedReplicas(t, b)
			wA, wB := syncWatcher(t, stA, engA), syncWatcher(t, stB, engB)

			proxy.dropCommit.Store(true)
			// A Sync that runs while the COMMIT's answer is held back: it
			// may read the row before the committer knows the outcome.
			early := make(chan error, 1)
			go func() {
				<-proxy.fired
				time.Sleep(dropDelay / 3)
				early <- wA.Sync(ctx)
			}()
			err := path.commit(ctx, stA, engA)
			if err == nil {
				t.Fatal("the change succeeded with the COMMIT's answer lost")
			}
			t.Logf("change with the COMMIT's answer lost: %v", err)
			if rev, err := stB.Revision(ctx); err != nil || rev != 1 {
				t.Fatalf("database revision = %d, %v; want 1 (the server committed)", rev, err)
			}
			if err := <-early; err != nil {
				t.Logf("Sync during the COMMIT: %v", err)
			}
			if err := wA.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if err := wB.Sync(ctx); err != nil {
				t.Fatalf("Sync B: %v", err)
			}
			if _, err := engA.GetEntity(ctx, "e1"); err != nil {
				t.Fatalf("replica A lost its own committed change: %v (revision %d)", err, wA.Revision())
			}
			assertSameRules(t, "A and the database", storedRules(t, stB), sortedRules(engA.Rules()))
			assertSameRules(t, "A and B", sortedRules(engB.Rules()), sortedRules(engA.Rules()))
			if err := wA.Behind(); err != nil {
				t.Fatalf("Behind: %v", err)
			}
			// A goes on: the retry is refused as the engine's, not the store's.
			if _, err := engA.CreateEntity(ctx, "p1", "e1"); !errors.Is(err, policy.ErrConflict) || errors.Is(err, ErrConflict) {
				t.Fatalf("retry = %v, want the engine's conflict", err)
			}
			if _, err := engA.CreateEntity(ctx, "p1", "e2"); err != nil {
				t.Fatal(err)
			}
			if _, err := engA.GetEntity(ctx, "e2"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
