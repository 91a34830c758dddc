package auth

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures a [Service]; see New for the defaults.
type Option func(*options)

type options struct {
	ttl            time.Duration
	issuer         string
	leeway         time.Duration
	now            func() time.Time
	log            *slog.Logger
	alg            Algorithm
	cacheSize      int
	poll           time.Duration
	maxStale       time.Duration
	kek            []byte
	pepper         []byte
	maxFailures    int
	failWindow     time.Duration
	cooldown       time.Duration
	limiterEntries int
	maxBody        int64
	writeError     ErrorWriter
}

// Defaults. Every one of them can be changed with an Option.
const (
	DefaultTokenTTL        = 30 * time.Minute
	DefaultIssuer          = "gatehouse"
	DefaultLeeway          = 5 * time.Second
	DefaultCacheSize       = 10_000
	DefaultRevocationPoll  = 200 * time.Millisecond
	DefaultMaxStaleness    = 30 * time.Second
	DefaultMaxFailures     = 5
	DefaultFailureWindow   = time.Minute
	DefaultCooldown        = time.Minute
	DefaultLimiterEntries  = 10_000
	DefaultMaxBodyBytes    = 16 << 10
	maxLeeway              = 5 * time.Minute
	minTTL                 = time.Second
	maxTTL                 = 24 * time.Hour
	keyReloadEvery         = 30 * time.Second
	pruneEvery             = time.Minute
	revocationCommitWindow = 5 * time.Second
)

func defaultOptions() options {
	return options{
		ttl:            DefaultTokenTTL,
		issuer:         DefaultIssuer,
		leeway:         DefaultLeeway,
		now:            time.Now,
		log:            slog.New(slog.DiscardHandler),
		alg:            HS256,
		cacheSize:      DefaultCacheSize,
		poll:           DefaultRevocationPoll,
		maxStale:       DefaultMaxStaleness,
		maxFailures:    DefaultMaxFailures,
		failWindow:     DefaultFailureWindow,
		cooldown:       DefaultCooldown,
		limiterEntries: DefaultLimiterEntries,
		maxBody:        DefaultMaxBodyBytes,
		writeError:     WriteOAuthError,
	}
}

func (o *options) validate() error {
	switch {
	case o.ttl < minTTL || o.ttl > maxTTL:
		return fmt.Errorf("%w: token TTL %s: want %s to %s", ErrInvalidRequest, o.ttl, minTTL, maxTTL)
	case o.issuer == "":
		return fmt.Errorf("%w: empty issuer", ErrInvalidRequest)
	case o.leeway < 0 || o.leeway > maxLeeway:
		return fmt.Errorf("%w: leeway %s: want 0 to %s", ErrInvalidRequest, o.leeway, maxLeeway)
	case o.now == nil || o.log == nil || o.writeError == nil:
		return fmt.Errorf("%w: nil clock, logger or error writer", ErrInvalidRequest)
	case o.alg != HS256 && o.alg != EdDSA:
		return fmt.Errorf("%w: signing algorithm %q: want HS256 or EdDSA", ErrInvalidRequest, o.alg)
	case o.cacheSize < 0:
		return fmt.Errorf("%w: negative cache size", ErrInvalidRequest)
	case o.poll < time.Millisecond:
		return fmt.Errorf("%w: revocation poll interval %s is below 1ms", ErrInvalidRequest, o.poll)
	case o.maxStale != 0 && o.maxStale < 2*o.poll:
		return fmt.Errorf("%w: max staleness %s is below twice the poll interval", ErrInvalidRequest, o.maxStale)
	case o.kek != nil && len(o.kek) != 32:
		return fmt.Errorf("%w: key-encryption key must be 32 bytes, got %d", ErrInvalidRequest, len(o.kek))
	case o.pepper != nil && len(o.pepper) == 0:
		return fmt.Errorf("%w: empty secret pepper (leave the option out for none)", ErrInvalidRequest)
	case o.maxFailures < 1 || o.failWindow <= 0 || o.cooldown <= 0 || o.limiterEntries < 1:
		return fmt.Errorf("%w: brute-force limit must be positive", ErrInvalidRequest)
	case o.maxBody < 256:
		return fmt.Errorf("%w: body limit %d is below 256 bytes", ErrInvalidRequest, o.maxBody)
	}
	return nil
}

// WithTokenTTL sets the lifetime of issued tokens (default 30 minutes,
// 1 s to 24 h).
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithIssuer sets the "iss" claim written and required (default "gatehouse").
// Services that share a store must share the issuer.
func WithIssuer(iss string) Option { return func(o *options) { o.issuer = iss } }

// WithLeeway sets the clock-skew allowance when checking exp, nbf and iat
// (default 5 s, at most 5 min).
func WithLeeway(d time.Duration) Option { return func(o *options) { o.leeway = d } }

// WithNow sets the clock used for token times, client-secret cut-offs and
// the brute-force limiter (default time.Now). Polling uses real time.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default: discard). Secrets and tokens are never
// logged; client ids and token ids (jti) are.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSigningAlgorithm sets the algorithm of the keys the service creates
// (default HS256). Keys of the other algorithm already in the store keep
// verifying until they expire, each pinned to its own algorithm.
func WithSigningAlgorithm(a Algorithm) Option { return func(o *options) { o.alg = a } }

// WithCacheSize bounds the cache of verified tokens (default 10,000 entries;
// 0 disables the cache). The cache is split in 32 shards of ⌈n/32⌉ entries
// each, so it holds up to n rounded up to a multiple of 32 (32 for n < 32).
func WithCacheSize(n int) Option { return func(o *options) { o.cacheSize = n } }

// WithRevocationPoll sets how often the service reads new revocations from
// the store (default 200 ms). A token revoked on another replica is refused
// here within about this interval, cached or not.
func WithRevocationPoll(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithMaxRevocationStaleness sets how long the service keeps accepting tokens
// while it fails to read revocations from the store (default 30 s). After
// that, Authenticate fails closed with [ErrUnavailable] until a read
// succeeds. 0 disables the bound (availability over revocation).
func WithMaxRevocationStaleness(d time.Duration) Option { return func(o *options) { o.maxStale = d } }

// WithKeyEncryption encrypts signing-key material at rest with AES-256-GCM
// under kek (32 bytes), each key bound to its kid. Without it key material is
// stored in clear, so the store's database must be protected like a secret.
// Keys stored in clear keep working after the option is turned on; keys
// stored sealed need the same kek. A kek of any other length, empty or nil
// included, makes [New] fail with [ErrInvalidRequest].
func WithKeyEncryption(kek []byte) Option {
	// Never nil, even for an empty kek: validate refuses it rather than
	// storing keys in clear (an unset environment variable, say).
	return func(o *options) { o.kek = append(make([]byte, 0, len(kek)), kek...) }
}

// WithSecretPepper hashes client secrets with HMAC-SHA-256 keyed by pepper
// (kept out of the database) instead of plain SHA-256. Changing the pepper
// invalidates every stored secret. An empty pepper makes [New] fail with
// [ErrInvalidRequest].
func WithSecretPepper(pepper []byte) Option {
	// Never nil, even for an empty pepper, which validate refuses.
	return func(o *options) { o.pepper = append(make([]byte, 0, len(pepper)), pepper...) }
}

// WithBruteForceLimit sets the limiter of client authentication: after
// maxFailures failed attempts for one client id within window, every attempt
// with that id (even with the right secret) is refused for cooldown (defaults
// 5, 1 min, 1 min). The limiter tracks at most DefaultLimiterEntries ids.
func WithBruteForceLimit(maxFailures int, window, cooldown time.Duration) Option {
	return func(o *options) { o.maxFailures, o.failWindow, o.cooldown = maxFailures, window, cooldown }
}

// WithMaxBodyBytes bounds request bodies of the token and revocation
// endpoints (default 16 KiB); larger bodies get 413.
func WithMaxBodyBytes(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithErrorWriter replaces [WriteOAuthError] for the endpoints' error answers.
func WithErrorWriter(f ErrorWriter) Option { return func(o *options) { o.writeError = f } }
