package policy

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2/persist"

	"github.com/gatehouse-authz/gatehouse/internal/index"
	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
)

// Engine owns the policies and decides requests. Create one with [New].
type Engine struct {
	cat   *model.Catalog
	ix    atomic.Pointer[index.Index] // replaced whole only by Reload
	store Store
	now   func() time.Time
	log   *slog.Logger
	newID func() string

	mu       sync.Mutex // serialises changes
	revision atomic.Int64
	ignored  atomic.Int64 // stored rules the last load ignored
	// loadedRev is the revision of the snapshot the index was last loaded
	// from, for a SnapshotStore (0 otherwise). Written under mu.
	loadedRev atomic.Int64
}

type options struct {
	catalog *model.Catalog
	store   Store
	now     func() time.Time
	logger  *slog.Logger
	newID   func() string
	err     error // the first option given a nil value
}

// isNil reports whether v is nil or a nil pointer, map, slice, func or
// channel in an interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// need records that the option named opt was given nil, which New reports.
func (o *options) need(ok bool, opt string) {
	if !ok && o.err == nil {
		o.err = fmt.Errorf("%w: %s(nil)", ErrInvalid, opt)
	}
}

// Option configures an [Engine].
type Option func(*options)

// WithCatalog sets the catalog of object types and actions. The default is
// [model.DefaultCatalog] (Monite's).
func WithCatalog(c *model.Catalog) Option {
	return func(o *options) { o.need(c != nil, "WithCatalog"); o.catalog = c }
}

// WithStore sets where the policies are stored. The default keeps them in
// memory only.
func WithStore(s Store) Option {
	return func(o *options) { o.need(!isNil(s), "WithStore"); o.store = s }
}

// WithAdapter stores the policies through a Casbin adapter (see
// [AdapterStore]).
func WithAdapter(a persist.Adapter) Option {
	return func(o *options) { o.need(!isNil(a), "WithAdapter"); o.store = AdapterStore(a) }
}

// WithNow sets the clock used for role timestamps. The default is time.Now.
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.need(now != nil, "WithNow"); o.now = now }
}

// WithLogger sets the logger. The default (and nil) discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithIDGenerator sets how role ids are made when a [RoleSpec] has none.
// The default makes random UUIDs (version 4).
func WithIDGenerator(f func() string) Option {
	return func(o *options) { o.need(f != nil, "WithIDGenerator"); o.newID = f }
}

// New returns an engine with the policies loaded from its store. An option
// given nil (but WithLogger's) is an error wrapping [ErrInvalid].
func New(ctx context.Context, opts ...Option) (*Engine, error) {
	o := options{store: memoryStore{}, now: time.Now, newID: newUUID}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.catalog == nil {
		o.catalog = model.DefaultCatalog()
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cat: o.catalog, store: o.store, now: o.now, log: o.logger, newID: o.newID}
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// load reads every stored rule into a fresh index, in batches so that the
// whole table is never held twice.
func (e *Engine) load(ctx context.Context) error {
	ix := index.New(e.cat)
	b := ix.Begin()
	var n, skipped, bad int
	var rev int64
	add := func(r model.Rule) error {
		f, err := rules.Decode(r)
		if err != nil {
			bad++
			e.log.WarnContext(ctx, "gatehouse: ignoring a stored rule", "rule", r.String(), "err", err)
			return nil
		}
		if !b.Add(f) {
			skipped++
		}
		if n++; n%10000 == 0 {
			b.Publish()
		}
		return nil
	}
	var err error
	if s, ok := e.store.(SnapshotStore); ok {
		rev, err = s.LoadSnapshot(ctx, add)
	} else {
		err = e.store.Load(ctx, add)
	}
	if err != nil {
		return fmt.Errorf("%w: loading policies: %w", ErrStorage, err)
	}
	b.Publish()
	ix.Pack()
	if skipped > 0 {
		e.log.WarnContext(ctx, "gatehouse: stored permissions outside the catalog are ignored", "rules", skipped)
	}
	e.log.DebugContext(ctx, "gatehouse: policies loaded", "rules", n, "ignored", bad+skipped)
	e.ix.Store(ix)
	e.ignored.Store(int64(bad + skipped))
	e.loadedRev.Store(rev)
	if rev > 0 {
		// The index is the snapshot: its revision, even a lower one (the
		// database was reset). Every writer holds mu.
		e.revision.Store(rev)
	}
	return nil
}

// LoadedRevision returns the revision of the snapshot the engine last
// loaded ([New] or [Engine.Reload]), and whether its store is a
// [SnapshotStore] (if not, it does not know the revision: 0, false).
func (e *Engine) LoadedRevision() (rev int64, ok bool) {
	_, ok = e.store.(SnapshotStore)
	return e.loadedRev.Load(), ok
}

// loaded reports whether the last load's snapshot included the change of
// revision rev (0: a store that does not number its changes).
func (e *Engine) loaded(rev int64) bool { return rev > 0 && rev <= e.loadedRev.Load() }

// Ignored returns the number of stored rules the last load ([New] or
// [Engine.Reload]) ignored: rules that do not decode (made by other tools,
// or damaged) and permissions on an (object type, action) outside the
// engine's catalog. The engine logs them as warnings. A tool that exports
// or checks the policy should refuse to go on when it is not 0.
func (e *Engine) Ignored() int { return int(e.ignored.Load()) }

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *model.Catalog { return e.cat }

// Revision returns the number of the last change the engine applied: the
// store's revision when it numbers changes, else a local counter.
func (e *Engine) Revision() int64 { return e.revision.Load() }

// begin takes the locks of one management call (op names it in errors):
// the store's change lock when the store is a [LockingStore] (which brings
// the index up to date first), then e.mu. done releases them, in the
// reverse order.
func (e *Engine) begin(ctx context.Context, op string) (c Committer, done func(), err error) {
	c, release := Committer(e.store), func() {}
	if ls, ok := e.store.(LockingStore); ok {
		c, release, err = ls.Lock(ctx, e)
		if err != nil {
			e.log.WarnContext(ctx, "gatehouse: taking the change lock failed", "op", op, "err", err)
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrStorage, op, err)
		}
		if c == nil || release == nil {
			if release != nil {
				release()
			}
			return nil, nil, fmt.Errorf("%w: %s: the store's Lock returned no committer", ErrStorage, op)
		}
	}
	e.mu.Lock()
	return c, func() {
		e.mu.Unlock()
		release()
	}, nil
}

// commit stores ch through c and then publishes it to the index. The
// caller holds the locks of [Engine.begin].
func (e *Engine) commit(ctx context.Context, c Committer, ch *Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if actor, ok := ActorFromContext(ctx); ok {
		if err := validateActor(actor); err != nil {
			return err
		}
		ch.Actor = actor
	}
	rm, add, err := decodeAll(ch)
	if err != nil {
		return err
	}
	if err := c.Commit(ctx, ch); err != nil {
		e.log.ErrorContext(ctx, "gatehouse: storing a change failed", "op", ch.Op, "entity", string(ch.Entity), "err", err)
		return fmt.Errorf("%w: %s: %w", ErrStorage, ch.Op, err)
	}
	if d := deferredOf(ctx); d != nil {
		rev := ch.Revision
		d.note(rm, add)
		d.apply(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.loaded(rev) {
				return // a load since the commit included it, and perhaps later changes
			}
			e.ix.Load().Apply(rm, add)
			e.bump(rev)
		})
		return nil
	}
	e.ix.Load().Apply(rm, add)
	e.bump(ch.Revision)
	return nil
}

type deferKey struct{}

// deferred is the state of a [WithDeferredApply] context: how to publish,
// and the changes committed with it but not published yet (their facts, in
// order), with the entities they touch. The management calls made with the
// context read an entity they touch as those changes leave it: its current
// snapshot with their facts replayed onto a private batch, never published
// (see [Engine.snapshot]), so that each change is checked against the state
// the transaction's earlier changes leave (a role made the default cannot
// then be deleted, an entity a user joined is removed with the user, a name
// freed by a rename can be taken), and ids are unique across what the
// index holds and what the changes made. Replaying onto the current
// snapshot, rather than keeping a copy, shares nothing with another read
// and sees changes published meanwhile from other contexts (with a store
// that is not a [LockingStore], or after a Reload). mu guards the log:
// reads with the context may run beside a change.
type deferred struct {
	apply func(apply func())

	mu    sync.Mutex
	log   map[model.EntityID][]factChange // by entity: entities are independent
	users map[model.UserID][]model.EntityID
	roles map[model.RoleID][]model.EntityID
}

// factChange is one committed, unpublished change's facts of one entity.
type factChange struct{ rm, add []rules.Fact }

func deferredOf(ctx context.Context) *deferred {
	d, _ := ctx.Value(deferKey{}).(*deferred)
	return d
}

// note records a committed change: its facts in the log of each entity
// they name, and the entities that name each user and role id.
func (d *deferred) note(rm, add []rules.Fact) {
	d.mu.Lock()
	defer d.mu.Unlock()
	byEnt := map[model.EntityID]*factChange{}
	part := func(f rules.Fact) *factChange {
		ch := byEnt[f.Entity]
		if ch == nil {
			ch = &factChange{}
			byEnt[f.Entity] = ch
		}
		if f.User != "" && !slices.Contains(d.users[f.User], f.Entity) {
			d.users[f.User] = append(d.users[f.User], f.Entity)
		}
		if f.Role != "" && !slices.Contains(d.roles[f.Role], f.Entity) {
			d.roles[f.Role] = append(d.roles[f.Role], f.Entity)
		}
		return ch
	}
	for _, f := range rm {
		ch := part(f)
		ch.rm = append(ch.rm, f)
	}
	for _, f := range add {
		ch := part(f)
		ch.add = append(ch.add, f)
	}
	for id, ch := range byEnt {
		d.log[id] = append(d.log[id], *ch)
	}
}

// userEntities and roleEntities return the entities whose logged facts
// name user u or role r; none for a nil d (a context without
// WithDeferredApply).
func (d *deferred) userEntities(u model.UserID) []model.EntityID {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.users[u])
}

func (d *deferred) roleEntities(r model.RoleID) []model.EntityID {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.roles[r])
}

// view returns entity id of ix with the context's unpublished changes
// replayed onto it, and whether they touch it at all (nil when they leave
// it empty). It costs the entity's copy and the entity's own log, not the
// whole transaction's.
func (d *deferred) view(ix *index.Index, id model.EntityID) (*index.Entity, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	log, ok := d.log[id]
	if !ok {
		return nil, false
	}
	b := ix.Begin()
	for _, ch := range log {
		for _, f := range ch.rm {
			b.Remove(f)
		}
		for _, f := range ch.add {
			b.Add(f)
		}
	}
	return b.View(id)
}

// WithDeferredApply returns a context under which a change is committed to
// the store but not yet published to the engine's index: instead, defer_ is
// called with a function that publishes it. A store that runs changes inside
// an application's own transaction uses it to publish them only once that
// transaction commits (and to drop them when it rolls back). Until then,
// decisions, and calls made with other contexts, do not see the change.
// The management calls made with the returned context do: they read and
// check an entity as the earlier changes made with the context leave it (a
// role made the default cannot then be deleted; a role created can be
// given to a user; a user removed can be added again), and so do the reads
// made with it ([Engine.GetRole], [Engine.ListUsers], ...), except
// [Engine.ListEntities] and [Engine.LookupEntityUser], which read the
// published index. Use one such context per transaction.
func WithDeferredApply(ctx context.Context, defer_ func(apply func())) context.Context {
	return context.WithValue(ctx, deferKey{}, &deferred{apply: defer_, log: map[model.EntityID][]factChange{},
		users: map[model.UserID][]model.EntityID{}, roles: map[model.RoleID][]model.EntityID{}})
}

// bump records that a change of revision rev (0 when the store does not
// number changes) was applied. The revision only moves forward.
func (e *Engine) bump(rev int64) {
	if rev <= 0 {
		e.revision.Add(1)
		return
	}
	for {
		cur := e.revision.Load()
		if rev <= cur || e.revision.CompareAndSwap(cur, rev) {
			return
		}
	}
}

func decodeAll(ch *Change) (rm, add []rules.Fact, err error) {
	dec := func(rs []model.Rule) ([]rules.Fact, error) {
		out := make([]rules.Fact, 0, len(rs))
		for _, r := range rs {
			f, err := rules.Decode(r)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			out = append(out, f)
		}
		return out, nil
	}
	if rm, err = dec(ch.Remove); err != nil {
		return nil, nil, err
	}
	if add, err = dec(ch.Add); err != nil {
		return nil, nil, err
	}
	return rm, add, nil
}

// ApplyCommitted publishes a change that another engine already committed
// to the shared store (a replica's watcher calls it). It does not write to
// the store. Changes must be applied in commit order.
//
// With a [SnapshotStore], a change whose revision the last load or
// [Engine.Reload] already included is ignored: a watcher that read it from
// the feed before a reload would otherwise apply it a second time, over the
// later changes the reload brought (re-adding a rule one of them removed).
func (e *Engine) ApplyCommitted(ch Change) error {
	rm, add, err := decodeAll(&ch)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loaded(ch.Revision) {
		return nil
	}
	e.ix.Load().Apply(rm, add)
	e.bump(ch.Revision)
	return nil
}

// Reload replaces the index with the store's current content. A replica that
// lost track of changes calls it. An engine without a store ([WithStore]
// not given) keeps its policies only in its index: there is nothing to
// reload them from, and Reload does nothing.
func (e *Engine) Reload(ctx context.Context) error {
	if _, ok := e.store.(memoryStore); ok {
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.load(ctx)
}

// Rules returns every rule of the current policy, in the persistence format
// (for export to Casbin's tools, and for tests), sorted.
func (e *Engine) Rules() []model.Rule {
	var out []model.Rule
	e.ix.Load().Entities(func(en *index.Entity) bool {
		out = append(out, entityRules(e.cat, en)...)
		return true
	})
	slices.SortFunc(out, func(a, b model.Rule) int {
		if c := strings.Compare(a.PType, b.PType); c != 0 {
			return c
		}
		return slices.Compare(a.Values, b.Values)
	})
	return out
}

// entityRules returns the rules that make up one entity's snapshot.
func entityRules(cat *model.Catalog, en *index.Entity) []model.Rule {
	var out []model.Rule
	for _, p := range en.Owners {
		out = append(out, rules.Owner(p, en.ID))
	}
	for _, r := range en.Roles {
		if r == nil {
			continue
		}
		out = append(out, roleRules(cat, en.ID, r)...)
	}
	for _, i := range en.Defaults {
		out = append(out, rules.DefaultRole(en.ID, en.Roles[i].ID))
	}
	for u := range en.Users {
		for _, l := range en.Links(u) {
			out = append(out, rules.Member(en.ID, u, linkRole(en, l)))
		}
	}
	return out
}

// linkRole returns the role id of member link l ("" for DefaultMarker).
func linkRole(en *index.Entity, l int32) model.RoleID {
	if l == index.DefaultMarker {
		return ""
	}
	return en.Roles[l].ID
}

// roleRules returns a role's declaration and permission rules.
func roleRules(cat *model.Catalog, e model.EntityID, r *index.Role) []model.Rule {
	var out []model.Rule
	if r.Declared {
		out = append(out, rules.RoleDecl(e, r.ID, r.Name, r.Created, r.Updated))
	}
	for slot := 0; slot < cat.Len(); slot++ {
		for _, p := range r.Grants(slot) {
			out = append(out, rules.Permission(e, r.ID, cat.Key(slot), p))
		}
	}
	return out
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
