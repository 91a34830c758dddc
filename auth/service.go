package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-authz/gatehouse/internal/nilcheck"
	"github.com/gatehouse-authz/gatehouse/model"
)

// Service issues, verifies and revokes tokens and manages API clients. It is
// safe for concurrent use. Create it with [New] and stop it with
// [Service.Close].
type Service struct {
	store Store
	dir   Directory
	o     options
	log   *slog.Logger

	keys    atomic.Pointer[keyset]
	keysMu  sync.Mutex // serialises key reloads and rotations
	reloads keyReloads // of the keys, for tokens of unknown kids

	cache   *tokenCache
	revoked *revokedSet
	limiter *limiter
	dummy   []byte // hash compared when the client does not exist

	start    time.Time    // monotonic origin
	lastSync atomic.Int64 // monotonic nanoseconds since start of the last good revocation read
	closed   atomic.Bool
	bg       context.Context // the poller's and key reloads'; cancelled by Close
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

// New returns a Service on store. dir answers the entity_user grant; with a
// nil dir that grant is refused. New loads the signing keys (creating the
// first one if the store has none) and the revocation list, and starts a
// goroutine that polls the store for revocations and key rotations until
// [Service.Close]. The store's schema must exist (see [GormStore.Migrate]).
//
// Defaults: tokens live 30 minutes, issuer "gatehouse", HS256, leeway 5 s,
// cache of 10,000 verified tokens, revocation poll every 200 ms, fail closed
// after 30 s without a successful poll, 5 failed client authentications per
// minute then a one-minute cool-down, bodies up to 16 KiB.
func New(ctx context.Context, store Store, dir Directory, opts ...Option) (*Service, error) {
	// A typed nil (a nil *GormStore, a nil *policy.Engine) would panic at
	// its first call: it is refused, where a nil dir interface means none.
	if nilcheck.IsNil(store) {
		return nil, fmt.Errorf("%w: store is required (got %s)", ErrInvalidRequest, nilcheck.Name(store))
	}
	if dir != nil && nilcheck.IsNil(dir) {
		return nil, fmt.Errorf("%w: directory is %s (pass a nil Directory for none)", ErrInvalidRequest, nilcheck.Name(dir))
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Service{
		store:   store,
		dir:     dir,
		o:       o,
		log:     o.log.With(slog.String("component", "gatehouse/auth")),
		cache:   newTokenCache(o.cacheSize),
		revoked: newRevokedSet(),
		limiter: newLimiter(&o),
		dummy:   make([]byte, sha256.Size),
		start:   time.Now(),
		done:    make(chan struct{}),
	}
	copy(s.dummy, s.hashSecret(randomToken(32)))
	if err := s.loadKeys(ctx); err != nil {
		return nil, err
	}
	var rs revocationSync
	if err := rs.sync(ctx, store, s.revoked, o.now()); err != nil {
		return nil, fmt.Errorf("auth: load revocations: %w", err)
	}
	s.lastSync.Store(int64(time.Since(s.start)))
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bg, s.cancel = bg, cancel
	go s.run(bg, &rs)
	return s, nil
}

// Close stops the background poller and waits for it. Afterwards
// Authenticate returns [ErrUnavailable]. Close is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		<-s.done
	})
	return nil
}

// run polls the store until ctx is cancelled.
func (s *Service) run(ctx context.Context, rs *revocationSync) {
	defer close(s.done)
	t := time.NewTicker(s.o.poll)
	defer t.Stop()
	lastPrune, lastKeys := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := rs.sync(ctx, s.store, s.revoked, s.o.now()); err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "reading revocations failed", slog.Any("error", err))
			}
		} else {
			s.lastSync.Store(int64(time.Since(s.start)))
		}
		if time.Since(lastKeys) >= keyReloadEvery {
			lastKeys = time.Now()
			if err := s.loadKeys(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "reloading signing keys failed", slog.Any("error", err))
			}
		}
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			cut := s.o.now()
			s.revoked.prune(cut)
			if n, err := s.store.PruneRevocations(ctx, cut); err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "pruning revocations failed", slog.Any("error", err))
				}
			} else if n > 0 {
				s.log.DebugContext(ctx, "pruned revocations", slog.Int64("count", n))
			}
		}
	}
}

// loadKeys reads the keys from the store. When the store has no key that
// may sign (none yet, or every one retired), it makes one: the service never
// goes on signing with a key the store marks retired.
func (s *Service) loadKeys(ctx context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	recs, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: load signing keys: %w", err)
	}
	ks, err := buildKeyset(recs, &s.o)
	if err != nil {
		return fmt.Errorf("auth: load signing keys: %w", err)
	}
	if ks.signing == nil {
		k, err := generateKey(s.o.alg, newKeyTime(recs, s.o.now()), s.o.kek)
		if err != nil {
			return err
		}
		if err := s.store.AddSigningKey(ctx, k); err != nil {
			return fmt.Errorf("auth: store signing key: %w", err)
		}
		if len(recs) > 0 {
			s.log.WarnContext(ctx, "every signing key in the store is retired: created a new one", slog.String("kid", k.ID))
		}
		s.log.InfoContext(ctx, "created signing key", slog.String("kid", k.ID), slog.String("alg", string(k.Algorithm)))
		if ks, err = buildKeyset(append(recs, k), &s.o); err != nil {
			return err
		}
	}
	s.keys.Store(ks)
	return nil
}

// newKeyTime returns the creation time of a new key: now, or just after the
// newest of recs if that is not before now (clocks of replicas differ), so
// that the new key is the newest and signs.
func newKeyTime(recs []KeyRecord, now time.Time) time.Time {
	for _, r := range recs {
		if !r.CreatedAt.Before(now) {
			now = r.CreatedAt.Add(time.Nanosecond)
		}
	}
	return now
}

// RotateSigningKey creates a new signing key of the configured algorithm and
// retires the older keys: they keep verifying the tokens they signed until
// those expire (token TTL, plus leeway and the time other replicas take to
// notice the rotation). It returns the new key id. Of rotations made at the
// same time on several replicas, the newest key is kept and signs.
func (s *Service) RotateSigningKey(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	recs, err := s.store.SigningKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("auth: load signing keys: %w", err)
	}
	now := s.o.now()
	k, err := generateKey(s.o.alg, newKeyTime(recs, now), s.o.kek)
	if err != nil {
		return "", err
	}
	if err := s.store.AddSigningKey(ctx, k); err != nil {
		return "", fmt.Errorf("auth: store signing key: %w", err)
	}
	until := now.Add(s.o.ttl + s.o.leeway + 2*keyReloadEvery)
	if err := s.store.RetireSigningKeys(ctx, k.ID, now, until); err != nil {
		return "", fmt.Errorf("auth: retire signing keys: %w", err)
	}
	if err := s.loadKeys(ctx); err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "rotated signing key", slog.String("kid", k.ID))
	return k.ID, nil
}

// RevokeSigningKey revokes the signing key kid at once, as when it has
// leaked: every token it signed is refused from now on (on other replicas
// within the revocation poll interval, cached or not), however long it had
// left. When kid is the key that signs, a new key is made first
// ([Service.RotateSigningKey]), so that tokens issued afterwards are good.
// Errors wrap [ErrNotFound] for a key the store does not hold.
func (s *Service) RevokeSigningKey(ctx context.Context, kid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	recs, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: load signing keys: %w", err)
	}
	i := slices.IndexFunc(recs, func(r KeyRecord) bool { return r.ID == kid })
	if i < 0 {
		return fmt.Errorf("auth: revoke signing key %q: %w", kid, ErrNotFound)
	}
	if recs[i].RetiredAt.IsZero() {
		if _, err := s.RotateSigningKey(ctx); err != nil {
			return err
		}
	}
	// Kept as long as any token of the key may live, whatever the TTL and
	// leeway of the replica that signed it.
	r := Revocation{ID: keyRevocationPrefix + kid, ExpiresAt: s.o.now().Add(maxTTL + 2*maxLeeway)}
	if err := s.addRevocation(ctx, r); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "revoked signing key", slog.String("kid", kid))
	return nil
}

// Authenticate verifies a bearer token and returns who it speaks for. It
// fails closed: any doubt gives an error wrapping [ErrInvalidToken]
// ([ErrExpiredToken] and [ErrRevokedToken] wrap it too), or [ErrUnavailable]
// when the revocation list is stale, the service closed, or a token names a
// key unknown here and the keys could not be reloaded (the store failed, or
// ctx ended first). A token of an unknown key waits for a reload of the
// keys (at most one a second, shared by the requests that wait for it), so
// that a key just rotated on another replica is known. It never panics.
//
// A verified token is cached (keyed by the whole string) until
// it expires; the revocation list is consulted on every call, cached or not.
func (s *Service) Authenticate(ctx context.Context, token string) (p Principal, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "panic while verifying a token", slog.Any("panic", r))
			p, err = Principal{}, ErrInvalidToken
		}
	}()
	if len(token) == 0 || len(token) > maxTokenLen {
		return Principal{}, ErrInvalidToken
	}
	if s.closed.Load() {
		return Principal{}, fmt.Errorf("%w: service closed", ErrUnavailable)
	}
	if s.o.maxStale > 0 && time.Since(s.start)-time.Duration(s.lastSync.Load()) > s.o.maxStale {
		return Principal{}, fmt.Errorf("%w: revocation list is stale", ErrUnavailable)
	}
	now := s.o.now()
	if s.cache != nil {
		if p, ok := s.cache.get(token, now.UnixNano()); ok {
			if s.revoked.has(&p) {
				s.cache.remove(token)
				return Principal{}, ErrRevokedToken
			}
			return p, nil
		}
	}
	p, k, err := s.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	if s.revoked.has(&p) {
		return Principal{}, ErrRevokedToken
	}
	if s.cache != nil {
		exp := p.ExpiresAt
		if !k.verifyUntil.IsZero() && k.verifyUntil.Before(exp) {
			exp = k.verifyUntil
		}
		s.cache.put(strings.Clone(token), p, exp.UnixNano(), now.UnixNano())
	}
	return p, nil
}

// verify checks the token's signature and claims. On an unknown kid it
// waits for a reload of the keys from the store that starts after the call
// (see awaitKeyReload) and tries again, so that a key rotated on another
// replica is picked up, and a token whose kid is still unknown then is
// invalid. A failed reload gives [ErrUnavailable] (the token may be good),
// and so does ctx ending first.
func (s *Service) verify(ctx context.Context, token string) (Principal, *verifyKey, error) {
	p, k, err := parse(s.keys.Load(), token)
	if err == nil || !errors.Is(err, errUnknownKID) {
		return p, k, err
	}
	if lerr := s.awaitKeyReload(ctx); lerr != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "reloading signing keys failed", slog.Any("error", lerr))
		}
		return Principal{}, nil, fmt.Errorf("%w: %w", ErrUnavailable, lerr)
	}
	return parse(s.keys.Load(), token)
}

// keyReloads coalesces the reloads of the signing keys that tokens of
// unknown key ids ask for: at most one a second (a made-up kid costs no
// signature, so each must not cost a store read), each shared by every
// request that came before it started.
type keyReloads struct {
	mu        sync.Mutex
	next      *keyReload // the reload due next, not started yet; nil when none is
	lastStart time.Time
}

// keyReload is one reload; done is closed when err is set.
type keyReload struct {
	done chan struct{}
	err  error
}

// keyReloadTimeout bounds one reload of the keys.
const keyReloadTimeout = 10 * time.Second

// awaitKeyReload waits for a reload of the signing keys that starts after
// the call: the one due next, or a new one, which starts a second after the
// last one at the earliest. Keys rotated before the call are thus known
// after it. It returns the reload's error, or ctx's when ctx ends first (the
// reload goes on for the others).
func (s *Service) awaitKeyReload(ctx context.Context) error {
	r := &s.reloads
	r.mu.Lock()
	c := r.next
	if c == nil {
		c = &keyReload{done: make(chan struct{})}
		r.next = c
		go s.runKeyReload(c, time.Until(r.lastStart.Add(time.Second)))
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runKeyReload runs reload c after wait, on the service's context.
func (s *Service) runKeyReload(c *keyReload, wait time.Duration) {
	defer close(c.done)
	defer func() { // a Store that panics fails the reload, not the process
		if r := recover(); r != nil {
			s.log.Error("panic while reloading signing keys", slog.Any("panic", r))
			c.err = fmt.Errorf("auth: reloading signing keys: panic: %v", r)
		}
	}()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.bg.Done():
			t.Stop()
		}
	}
	r := &s.reloads
	r.mu.Lock()
	r.next, r.lastStart = nil, time.Now() // from here, a new request waits for the next one
	r.mu.Unlock()
	if s.bg.Err() != nil {
		c.err = errors.New("service closed")
		return
	}
	ctx, cancel := context.WithTimeout(s.bg, keyReloadTimeout)
	defer cancel()
	c.err = s.loadKeys(ctx)
}

// Revoke revokes a token issued by this service (or a replica): it is refused
// everywhere from now on (on other replicas within the poll interval) until
// it would have expired. Revoking an expired or already revoked token does
// nothing. A token that does not verify gives [ErrInvalidToken]; a token of
// a key unknown here, when the keys cannot be reloaded from the store,
// [ErrUnavailable] (retry).
func (s *Service) Revoke(ctx context.Context, token string) error {
	return s.revoke(ctx, token, "")
}

// revoke revokes token; with a non-empty owner, only if the token belongs to
// that partner.
func (s *Service) revoke(ctx context.Context, token string, owner model.PartnerID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(token) == 0 || len(token) > maxTokenLen {
		return ErrInvalidToken
	}
	p, _, err := s.verify(ctx, token)
	if err != nil && !errors.Is(err, ErrExpiredToken) {
		return err
	}
	if owner != "" && p.PartnerID != owner {
		return ErrNotOwner
	}
	if err != nil { // expired: nothing to do
		return nil
	}
	// Kept past the token's expiry by the largest leeway any replica may
	// allow, not this one's: a replica configured with more would
	// otherwise accept the token again once the row is pruned.
	return s.addRevocation(ctx, Revocation{ID: p.TokenID, PartnerID: p.PartnerID, ExpiresAt: p.ExpiresAt.Add(maxLeeway)})
}

func (s *Service) addRevocation(ctx context.Context, r Revocation) error {
	r.RevokedAt = s.o.now()
	if err := s.store.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("auth: store revocation: %w", err)
	}
	s.revoked.add(r)
	s.log.InfoContext(ctx, "revoked", slog.String("id", r.ID), slog.String("partner_id", string(r.PartnerID)))
	return nil
}

// IssuePartnerToken authenticates the client and issues a partner token
// (grant type client_credentials). Errors: [ErrInvalidClient],
// [ErrTooManyAttempts], or a store failure.
func (s *Service) IssuePartnerToken(ctx context.Context, creds ClientCredentials) (Token, error) {
	c, err := s.authenticateClient(ctx, creds.ID, creds.Secret)
	if err != nil {
		return Token{}, err
	}
	return s.sign(ctx, Principal{Kind: KindPartner, PartnerID: c.PartnerID, ClientID: c.ID, APIs: c.APIs})
}

// IssueEntityUserToken authenticates the client and issues a token for the
// entity user (grant type entity_user), if the user belongs to an entity of
// the client's partner. Errors: [ErrInvalidClient], [ErrTooManyAttempts],
// [ErrInvalidRequest] for a malformed user id, [ErrUnknownUser] for a user
// that is unknown or belongs to another partner (not told apart), or a
// directory or store failure.
func (s *Service) IssueEntityUserToken(ctx context.Context, creds ClientCredentials, user model.UserID) (Token, error) {
	c, err := s.authenticateClient(ctx, creds.ID, creds.Secret)
	if err != nil {
		return Token{}, err
	}
	if err := user.Validate(); err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if s.dir == nil {
		return Token{}, fmt.Errorf("%w: no directory of entity users is configured", ErrUnknownUser)
	}
	entity, partner, err := s.dir.LookupEntityUser(ctx, user)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) {
			return Token{}, ErrUnknownUser
		}
		return Token{}, fmt.Errorf("auth: look up entity user: %w", err)
	}
	if partner != c.PartnerID {
		s.log.InfoContext(ctx, "entity user of another partner refused", slog.String("client_id", c.ID))
		return Token{}, ErrUnknownUser
	}
	if err := entity.Validate(); err != nil {
		return Token{}, fmt.Errorf("auth: directory returned a bad entity id: %w", err)
	}
	if c, err = s.recheckClient(ctx, c); err != nil {
		return Token{}, err
	}
	return s.sign(ctx, Principal{Kind: KindEntityUser, PartnerID: c.PartnerID, EntityID: entity, UserID: user, ClientID: c.ID, APIs: c.APIs})
}
