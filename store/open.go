package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open opens the database named by dsn and checks that it answers:
//
//   - "postgres://..." or "postgresql://...": PostgreSQL (pgx).
//   - "mysql://" followed by a go-sql-driver DSN, e.g.
//     "mysql://root@tcp(127.0.0.1:3306)/test": MySQL or MariaDB, always
//     with parseTime=true and autocommit=1 (see mysqlDSN).
//   - anything else, a file path or a "file:" URI: SQLite (cgo), with WAL,
//     a 5 s busy timeout, foreign keys on and immediate write transactions
//     (parameters already in the DSN are kept). [Store.Load] reads in a
//     deferred transaction all the same, without waiting for writers.
//
// A PostgreSQL key=value DSN ("host=... dbname=...") is refused with
// [ErrUnsupported] rather than taken for a SQLite file name, and so is a
// postgres:// URL whose user-info does not parse (a password with an
// unescaped "/" or "#", say) rather than misread, and an in-memory SQLite
// database without a shared cache (":memory:"), of which each connection
// of the pool would open its own, empty ("file::memory:?cache=shared" is
// one database for the pool). Errors never
// hold the DSN's passwords: they are masked in the DSN they quote and in
// the driver's message (an error whose message had to be masked no longer
// unwraps to the driver's error, but errors.Is still sees through it).
//
// The returned *gorm.DB is an ordinary pool that the application may share;
// GORM's logger is silenced. Close it with its DB().Close().
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	return open(ctx, dsn, false)
}

// OpenReadOnly is [Open] for a program that only reads the policies (a
// command-line tool, an audit): a SQLite database is opened read-only
// (mode=ro), so that the file is never changed, its journal mode
// included, and a missing file is an error rather than a new database;
// PostgreSQL and MySQL open as with Open (connect as a role that may only
// read to be sure: a [Store] only reads unless changes are made through
// it).
func OpenReadOnly(ctx context.Context, dsn string) (*gorm.DB, error) {
	return open(ctx, dsn, true)
}

func open(ctx context.Context, dsn string, readOnly bool) (*gorm.DB, error) {
	safe, secrets := redact(dsn)
	var d gorm.Dialector
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, ok := parseURL(dsn); !ok {
			return nil, fmt.Errorf("%w: malformed URL %q (percent-encode special characters in the password)", ErrUnsupported, safe)
		}
		d = postgres.Open(dsn)
	case strings.HasPrefix(dsn, "mysql://"):
		my, err := mysqlDSN(strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			return nil, fmt.Errorf("%w: malformed MySQL DSN %q: %w", ErrUnsupported, safe, scrub(err, secrets))
		}
		d = mysql.Open(my)
	case dsn == "":
		return nil, fmt.Errorf("%w: empty DSN", ErrUnsupported)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("%w: DSN scheme in %q", ErrUnsupported, safe)
	case conninfoRE.MatchString(dsn):
		return nil, fmt.Errorf("%w: key=value DSN %q: use a postgres:// URL", ErrUnsupported, safe)
	case sqliteMemoryUnshared(dsn):
		return nil, fmt.Errorf("%w: %q is an in-memory SQLite database, which each connection of the pool would open empty and on its own: use a file, or a shared cache (file::memory:?cache=shared)", ErrUnsupported, safe)
	case readOnly:
		d = sqlite.Open(sqliteReadOnlyDSN(dsn))
	default:
		d = sqlite.Open(sqliteDSN(dsn))
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, TranslateError: true})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", safe, scrub(err, secrets))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", safe, scrub(err, secrets))
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", safe, scrub(err, secrets))
	}
	return db, nil
}

// mysqlDSN returns go-sql-driver DSN dsn with what every connection
// needs, whatever dsn says: parseTime=true, without which time.Time
// columns (the application's rows) do not scan, and autocommit on for the
// session, since with it off (a DSN's autocommit=0, a server's
// init_connect) every plain read joins one transaction that never ends,
// and a watcher or a revocation poll reads the same old snapshot for good.
// The DSN's own parseTime and autocommit parameters are dropped; a DSN
// that sets autocommit otherwise (another spelling of the variable, or in
// another variable's value: the driver sends them all in one SET) is
// refused. Its other parameters are kept as written.
func mysqlDSN(dsn string) (string, error) {
	cfg, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	// The parameters follow the first "?" after the last "/" (a password
	// or an address may hold either), as the driver reads them. The empty
	// DSN (all defaults) is the only one the driver reads without a "/".
	base, query := dsn, ""
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		base = "/"
	} else if q := strings.IndexByte(dsn[slash+1:], '?'); q >= 0 {
		base, query = dsn[:slash+1+q], dsn[slash+2+q:]
	}
	params := []string{}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if kv == "" || k == "parseTime" || k == "autocommit" {
			continue
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			uv = v
		}
		// Only parameters the driver sends in its SET can set it (not its
		// own, as connectionAttributes=program_name:autocommit-auditor).
		if _, sent := cfg.Params[k]; sent && strings.Contains(strings.ToLower(k+"="+uv), "autocommit") {
			return "", fmt.Errorf("parameter %q sets autocommit, which the store needs on (it sets autocommit=1 itself)", k)
		}
		params = append(params, kv)
	}
	return base + "?" + strings.Join(append(params, "parseTime=true", "autocommit=1"), "&"), nil
}

// sqliteMemoryUnshared reports whether dsn names a SQLite in-memory
// database without a shared cache (":memory:", "file::memory:",
// "mode=memory"): every connection would have a database of its own.
func sqliteMemoryUnshared(dsn string) bool {
	path, query, _ := strings.Cut(dsn, "?")
	if !strings.HasPrefix(path, "file:") {
		// The driver passes parameters to SQLite only in a "file:" URI:
		// ":memory:?cache=shared" is a private database all the same.
		return path == ":memory:"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return false // let the driver report it
	}
	mem := path == "file::memory:" || q.Get("mode") == "memory"
	return mem && q.Get("cache") != "shared"
}

// conninfoRE matches a PostgreSQL key=value DSN: one that starts with a
// libpq keyword and "=".
var conninfoRE = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|passfile|sslmode|sslpassword|service|connect_timeout|application_name|options|target_session_attrs)\s*=`)

// sqliteReadOnlyDSN makes a SQLite DSN read-only: a "file:" URI (the
// driver passes parameters such as mode to SQLite only then) with mode=ro,
// without the parameters that would write (a journal mode, immediate
// transactions), with a busy timeout unless it sets one.
func sqliteReadOnlyDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		q = url.Values{} // the driver would report it; read-only all the same
	}
	for _, k := range []string{"_journal_mode", "_journal", "_txlock", "mode"} {
		q.Del(k)
	}
	q.Set("mode", "ro")
	if !q.Has("_busy_timeout") && !q.Has("_timeout") {
		q.Set("_busy_timeout", "5000")
	}
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	return path + "?" + q.Encode()
}

// sqliteDSN adds Gatehouse's connection parameters to a SQLite DSN unless
// it sets them itself.
func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return dsn // let the driver report it
	}
	set := func(keys []string, v string) {
		for _, k := range keys {
			if q.Has(k) {
				return
			}
		}
		q.Set(keys[0], v)
	}
	set([]string{"_journal_mode", "_journal"}, "WAL")
	set([]string{"_busy_timeout", "_timeout"}, "5000")
	set([]string{"_foreign_keys", "_fk"}, "on")
	set([]string{"_txlock"}, "immediate")
	return path + "?" + q.Encode()
}

const mask = "xxxxx"

// redact returns dsn with its passwords masked, for error messages, and
// the secrets it masked (as written and decoded), to mask them in the
// drivers' messages too. It knows URLs (the password of the user-info and
// the values of password-like query parameters), MySQL DSNs
// ("user:password@tcp(host)/db?..."), PostgreSQL key=value DSNs
// ("host=h password='p w'") and SQLite file names with parameters
// ("x.db?_auth_pass=..."). When a URL does not parse, everything between
// the user name and the last "@" is masked.
func redact(dsn string) (string, []string) {
	var r redactor
	var out string
	switch {
	case strings.HasPrefix(dsn, "mysql://"):
		out = "mysql://" + r.mysql(dsn[len("mysql://"):])
	case strings.Contains(dsn, "://"):
		out = r.url(dsn)
	default:
		out = r.plain(dsn)
	}
	// Longest first, so that a secret inside another is not masked first.
	slices.SortFunc(r.secrets, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return out, slices.Compact(r.secrets)
}

type redactor struct{ secrets []string }

// add records a secret as written and percent-decoded.
func (r *redactor) add(raw string) {
	if raw == "" || raw == mask {
		return
	}
	r.secrets = append(r.secrets, raw)
	for _, unescape := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
		if s, err := unescape(raw); err == nil && s != "" && s != raw {
			r.secrets = append(r.secrets, s)
		}
	}
}

func (r *redactor) url(dsn string) string {
	scheme, rest, _ := strings.Cut(dsn, "://")
	u, ok := parseURL(dsn)
	if !ok {
		// Mask everything between the user name and the last "@".
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, pw, ok := strings.Cut(rest[:at], ":"); ok {
				r.add(pw)
				r.add(rest[:at])
				rest = user + ":" + mask + rest[at:]
			}
		}
		if head, q, ok := strings.Cut(rest, "?"); ok {
			rest = head + "?" + r.params(q)
		}
		return scheme + "://" + rest
	}
	if pw, ok := u.User.Password(); ok {
		r.add(pw)
		// As written in dsn too.
		authority, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			_, raw, _ := strings.Cut(authority[:at], ":")
			r.add(raw)
		}
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	u.RawQuery = r.params(u.RawQuery)
	return u.String()
}

// parseURL parses dsn as a URL, as pgx does. It fails when the URL does
// not parse or when the user-info is not where the parser looks for it
// (a password with a "/" in it, say): drivers would read the password as
// a host or database name, and quote it in their errors.
func parseURL(dsn string) (*url.URL, bool) {
	u, err := url.Parse(dsn)
	_, rest, _ := strings.Cut(dsn, "://")
	head, _, _ := strings.Cut(rest, "?")
	if err != nil || u.User == nil && strings.Contains(head, "@") {
		return nil, false
	}
	return u, true
}

// mysql redacts a go-sql-driver DSN: [user[:password]@][net[(addr)]]/db[?params].
// Like the driver, it takes the user-info to end at the last "@" before
// the last "/".
func (r *redactor) mysql(dsn string) string {
	end := strings.LastIndex(dsn, "/")
	if end < 0 {
		end = len(dsn)
	}
	prefix, rest := "", dsn
	if at := strings.LastIndex(dsn[:end], "@"); at >= 0 {
		userinfo := dsn[:at]
		if user, pw, ok := strings.Cut(userinfo, ":"); ok {
			r.add(pw)
			userinfo = user + ":" + mask
		}
		prefix, rest = userinfo+"@", dsn[at+1:]
	}
	if addr, q, ok := strings.Cut(rest, "?"); ok {
		rest = addr + "?" + r.params(q)
	}
	return prefix + rest
}

// secretKeySuffixes end the names of DSN parameters that hold a secret
// (lower case).
var secretKeySuffixes = []string{"password", "passwd", "pass", "pwd", "secret", "token"}

// kvSecretRE matches a password-like key=value pair of a key=value DSN:
// the value is quoted ('...' or "...", with backslash escapes) or runs to
// the next unescaped blank.
var kvSecretRE = regexp.MustCompile(`(?i)(^|[\s;])([a-z0-9_.-]*(?:` + strings.Join(secretKeySuffixes, "|") + `))(\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|(?:[^\s\\]|\\.)*)`)

// plain redacts a DSN that is not a URL: a key=value DSN or a file name
// with parameters.
func (r *redactor) plain(dsn string) string {
	dsn = kvSecretRE.ReplaceAllStringFunc(dsn, func(m string) string {
		sub := kvSecretRE.FindStringSubmatch(m)
		v := sub[4]
		if v == "" {
			return m
		}
		r.add(v)
		if q := v[0]; q == '\'' || q == '"' {
			inner := strings.TrimSuffix(v[1:], string(q))
			r.add(inner)
			r.add(unbackslash(inner))
		} else {
			r.add(unbackslash(v))
		}
		return sub[1] + sub[2] + sub[3] + mask
	})
	if path, q, ok := strings.Cut(dsn, "?"); ok {
		dsn = path + "?" + r.params(q)
	}
	return dsn
}

func unbackslash(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// params masks the values of the password-like parameters of a query
// ("k=v&k=v"; ";" separates too, as some drivers read it).
func (r *redactor) params(q string) string {
	var b strings.Builder
	for q != "" {
		i := strings.IndexAny(q, "&;")
		seg, sep := q, ""
		if i >= 0 {
			seg, sep, q = q[:i], q[i:i+1], q[i+1:]
		} else {
			q = ""
		}
		k, v, ok := strings.Cut(seg, "=")
		key := k
		if s, err := url.QueryUnescape(k); err == nil {
			key = s
		}
		if ok && v != "" && sensitiveKey(key) {
			r.add(v)
			seg = k + "=" + mask
		}
		b.WriteString(seg)
		b.WriteString(sep)
	}
	return b.String()
}

// sensitiveKey reports whether a DSN parameter holds a secret: password,
// sslpassword, _auth_pass, pwd, ... (case-insensitively).
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretKeySuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// scrub masks secrets in err's message. An error whose message held one
// no longer unwraps to err (errors.As would hand out its secret), but
// errors.Is still matches through it.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, mask)
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string        { return e.msg }
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }
