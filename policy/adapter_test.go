package policy_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"

	casbinmodel "github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/gatehouse-authz/gatehouse/model"
)

// memAdapter is a Casbin adapter over a map, with a fault switch: the write
// after failAfter more successful writes fails (once, like a constraint
// violation); with sticky set, every write from then on fails (like a
// closed database).
type memAdapter struct {
	mu        sync.Mutex
	m         map[string]model.Rule
	failAfter int // -1: never fail
	sticky    bool
}

var _ persist.Adapter = (*memAdapter)(nil)

var errInjected = errors.New("injected storage fault")

func newMemAdapter() *memAdapter { return &memAdapter{m: map[string]model.Rule{}, failAfter: -1} }

func key(ptype string, rule []string) string { return ptype + "\x00" + strings.Join(rule, "\x00") }

func (a *memAdapter) LoadPolicy(m casbinmodel.Model) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.m {
		if err := persist.LoadPolicyArray(append([]string{r.PType}, r.Values...), m); err != nil {
			return err
		}
	}
	return nil
}

func (a *memAdapter) SavePolicy(casbinmodel.Model) error { return errors.New("not used") }

func (a *memAdapter) write() error {
	if a.failAfter == 0 {
		if !a.sticky {
			a.failAfter = -1
		}
		return errInjected
	}
	if a.failAfter > 0 {
		a.failAfter--
	}
	return nil
}

func (a *memAdapter) AddPolicy(_ string, ptype string, rule []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.write(); err != nil {
		return err
	}
	a.m[key(ptype, rule)] = model.Rule{PType: ptype, Values: append([]string(nil), rule...)}
	return nil
}

func (a *memAdapter) RemovePolicy(_ string, ptype string, rule []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.write(); err != nil {
		return err
	}
	delete(a.m, key(ptype, rule))
	return nil
}

func (a *memAdapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errors.New("not used")
}

func (a *memAdapter) rules() []model.Rule {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]model.Rule, 0, len(a.m))
	for _, r := range a.m {
		out = append(out, r)
	}
	return out
}

func (a *memAdapter) setFailAfter(n int, sticky bool) {
	a.mu.Lock()
	a.failAfter, a.sticky = n, sticky
	a.mu.Unlock()
}

// faultyAdapter is an adapter with memAdapter's fault switch.
type faultyAdapter interface {
	persist.Adapter
	rules() []model.Rule
	setFailAfter(n int, sticky bool)
}

// txMemAdapter is memAdapter as a persist.TransactionalAdapter: a
// transaction writes to a copy of the rules (with the fault switch as it
// was when the transaction began), which Commit installs and Rollback
// drops.
type txMemAdapter struct{ *memAdapter }

var _ persist.TransactionalAdapter = txMemAdapter{}

func newTxMemAdapter() txMemAdapter { return txMemAdapter{newMemAdapter()} }

func (a txMemAdapter) BeginTransaction(context.Context) (persist.TransactionContext, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &memTx{parent: a.memAdapter, work: &memAdapter{m: maps.Clone(a.m), failAfter: a.failAfter, sticky: a.sticky}}, nil
}

type memTx struct {
	parent *memAdapter
	work   *memAdapter
	done   bool
}

func (t *memTx) GetAdapter() persist.Adapter { return t.work }

func (t *memTx) Commit() error {
	if t.done {
		return errors.New("transaction already finished")
	}
	t.done = true
	t.parent.mu.Lock()
	defer t.parent.mu.Unlock()
	t.parent.m = t.work.m
	return nil
}

func (t *memTx) Rollback() error {
	if t.done {
		return errors.New("transaction already finished")
	}
	t.done = true
	return nil
}
