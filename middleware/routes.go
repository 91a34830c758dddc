package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Route declares what the requests of one route do.
type Route struct {
	// Pattern is the route's pattern exactly as registered with the router,
	// optionally preceded by a method: "GET /payables/{id}" (http.ServeMux),
	// or "/payables/{id}" (chi, or any method).
	Pattern string
	// Object is the object type the route acts on. It is empty for a
	// partner-only route.
	Object model.ObjectType
	// Action is the action; empty means the method's default (GET and HEAD
	// read, POST create, PUT and PATCH update, DELETE delete).
	Action model.Action
	// Owner, when set, looks up the creator of the route's object (see
	// [Middleware.RequireOwned]).
	Owner OwnerLookup
	// PartnerOnly marks a partner operation (see [Middleware.PartnerOnly]).
	PartnerOnly bool
}

// Routes is a table of route declarations.
type Routes []Route

// Routes returns one middleware for a whole router, which authorizes each
// request as its entry in table says (as [Middleware.Require],
// [Middleware.RequireOwned] or [Middleware.PartnerOnly] would). The table is
// checked first: a malformed pattern (a wildcard's braces unbalanced, a
// wildcard without a name, a name twice in a pattern with a method) or a
// repeated one, a missing object type, an object type or action outside
// the engine's catalog, or a method with no default action is an error.
//
// A request's pattern is r.Pattern (set by http.ServeMux and chi once they
// have matched, so the middleware may wrap each handler or sit in chi's
// With); when it is empty, Config.Pattern is asked; and when that is unset
// or also answers "" and the wrapped handler is an *http.ServeMux, the mux
// itself says which pattern it will serve (so Routes(table)(mux) works). A
// request that the mux will answer 404 or 405 is passed to it once
// authenticated.
//
// An owner lookup usually reads a path value (r.PathValue("id")). Around an
// *http.ServeMux the middleware sets the path values itself before calling
// it. With Config.Pattern (chi's Use) they are not set: declare such routes
// where the router has matched (chi's With, or per handler), or the lookup
// sees no id (it should then answer ErrNotFound: 404).
//
// Fail closed: an authenticated request whose pattern is not in the table is
// refused with 500 (a server misconfiguration, logged at Error level), and
// never reaches the handler.
func (m *Middleware) Routes(table Routes) (func(http.Handler) http.Handler, error) {
	rt := make(map[string]map[string]*guard, len(table)) // path → method ("" any) → guard
	for _, e := range table {
		method, path, err := splitPattern(e.Pattern)
		if err != nil {
			return nil, err
		}
		if rt[path][method] != nil {
			return nil, fmt.Errorf("%w: route %q is declared twice", ErrConfig, e.Pattern)
		}
		var g *guard
		switch {
		case e.PartnerOnly && (e.Object != "" || e.Action != "" || e.Owner != nil):
			return nil, fmt.Errorf("%w: partner-only route %q declares an object, action or owner", ErrConfig, e.Pattern)
		case e.PartnerOnly:
			g = &guard{partnerOnly: true}
		default:
			if e.Action == "" && method != "" && methodAction(method) == "" {
				return nil, fmt.Errorf("%w: route %q: method %s has no default action", ErrConfig, e.Pattern, method)
			}
			if err := m.checkDecl(e.Object, e.Action); err != nil {
				return nil, fmt.Errorf("%w: route %q: %w", ErrConfig, e.Pattern, err)
			}
			if e.Action == "" && method != "" && m.cat != nil {
				if err := m.cat.Check(e.Object, methodAction(method)); err != nil {
					return nil, fmt.Errorf("%w: route %q: %w", ErrConfig, e.Pattern, err)
				}
			}
			g = &guard{obj: e.Object, act: e.Action, owner: e.Owner}
			if g.act == "" && method != "" {
				g.act = methodAction(method)
			}
			m.canonical(g)
		}
		if rt[path] == nil {
			rt[path] = map[string]*guard{}
		}
		rt[path][method] = g
	}
	// exact maps the table's patterns, as routers report them, to their
	// guards, so that most requests need no parsing of their pattern. A
	// method-less pattern is there only when no declaration of the same
	// path has a method (lookupRoute would prefer that one).
	exact := make(map[string]*guard, len(table))
	for _, e := range table {
		method, path, _ := splitPattern(e.Pattern)
		if method != "" || len(rt[path]) == 1 {
			exact[e.Pattern] = rt[path][method]
		}
	}
	return func(next http.Handler) http.Handler {
		mux, _ := next.(*http.ServeMux)
		var owned ownedRoutes // routes with an owner lookup, to set path values around a mux
		if mux != nil {
			owned = m.ownedMux(table, rt, next)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, r, ok := m.principal(w, r)
			if !ok {
				return
			}
			// Around a mux, the mux says which of its patterns will serve
			// the request: r.Pattern, if set, is an outer router's, which
			// may name another route (or none of the table's).
			var pat string
			if mux != nil {
				if _, pat = mux.Handler(r); pat == "" {
					next.ServeHTTP(w, r) // the mux answers 404, 405 or a redirect
					return
				}
			} else if pat = r.Pattern; pat == "" && m.pattern != nil {
				pat = m.pattern(r)
			}
			g := exact[pat]
			if g == nil {
				g = lookupRoute(rt, pat, r.Method)
			}
			if g == nil {
				m.log.ErrorContext(r.Context(), "gatehouse: no route declaration; request refused",
					slog.String("pattern", pat), slog.String("method", r.Method), slog.String("subject", st.p.Subject().String()))
				m.fail(w, r, http.StatusInternalServerError, CodeInternal, detailInternal)
				return
			}
			if g.owner != nil && mux != nil {
				// Around a mux the path values are not set yet (or are an
				// outer router's), and the owner lookup needs them: a
				// private mux holding the owned routes matches the request
				// (setting r's path values) and authorizes it.
				// It must pick the route the application's mux picked:
				// another (a table entry ServeMux left out, a stale one
				// more specific) would authorize with another's guard.
				if _, op := owned.mux.Handler(r); owned.guards[op] != g {
					m.log.ErrorContext(r.Context(), "gatehouse: the owned route does not match the mux's; request refused",
						slog.String("pattern", pat), slog.String("owned_pattern", op))
					m.fail(w, r, http.StatusInternalServerError, CodeInternal, detailInternal)
					return
				}
				owned.mux.ServeHTTP(w, r)
				return
			}
			m.authorize(w, r, g, g.act, next)
		})
	}, nil
}

// ownedRoutes are the owned routes of a table in a mux of their own, and
// the guard of each pattern the mux holds.
type ownedRoutes struct {
	mux    *http.ServeMux
	guards map[string]*guard
}

// ownedMux returns a mux of the table's routes that have an owner lookup,
// each authorizing the request with its guard in rt and then calling next.
// A pattern http.ServeMux refuses (a chi-style one, "/a/{id}/b/{id}", or
// one that conflicts with another) is logged and left out, and only it;
// a request the application's mux gives to a route the owned mux serves
// with another guard is refused (see Routes).
func (m *Middleware) ownedMux(table Routes, rt map[string]map[string]*guard, next http.Handler) ownedRoutes {
	o := ownedRoutes{mux: http.NewServeMux(), guards: map[string]*guard{}}
	for _, e := range table {
		if e.Owner == nil {
			continue
		}
		method, path, _ := splitPattern(e.Pattern)
		g := rt[path][method]
		func() {
			defer func() {
				if v := recover(); v != nil {
					m.log.Error("gatehouse: http.ServeMux refuses a route of the table; it is left out", slog.String("pattern", e.Pattern), slog.Any("error", v))
				}
			}()
			o.mux.Handle(e.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m.authorize(w, r, g, g.act, next)
			}))
			o.guards[e.Pattern] = g
		}()
	}
	return o
}

// lookupRoute finds the guard of a request. The method comes from the
// pattern when it has one, else from the request; HEAD falls back to GET,
// and any method to a method-less declaration.
func lookupRoute(rt map[string]map[string]*guard, pattern, method string) *guard {
	if pattern == "" {
		return nil
	}
	pm, path, err := splitPattern(pattern)
	if err != nil {
		return nil
	}
	if pm != "" {
		method = pm
	}
	byMethod := rt[path]
	if g := byMethod[method]; g != nil {
		return g
	}
	if method == http.MethodHead {
		if g := byMethod[http.MethodGet]; g != nil {
			return g
		}
	}
	return byMethod[""]
}

// splitPattern splits "[METHOD ]path" at the first run of spaces or tabs.
func splitPattern(p string) (method, path string, err error) {
	i := strings.IndexAny(p, " \t")
	if i < 0 {
		path = p
	} else {
		method, path = p[:i], strings.TrimLeft(p[i+1:], " \t")
		for j := 0; j < len(method); j++ {
			if c := method[j]; c < 'A' || c > 'Z' {
				return "", "", fmt.Errorf("%w: pattern %q: method %q is not an upper-case token", ErrConfig, p, method)
			}
		}
	}
	if path == "" || strings.ContainsAny(path, " \t") {
		return "", "", fmt.Errorf("%w: pattern %q: want [METHOD ]path", ErrConfig, p)
	}
	if err := checkWildcards(path, method != ""); err != nil {
		return "", "", fmt.Errorf("%w: pattern %q: %w", ErrConfig, p, err)
	}
	return method, path, nil
}

// checkWildcards checks the {name} wildcards of a pattern's path as
// http.ServeMux and chi both write them: braces balanced (a chi regular
// expression may nest its own, as in {id:[0-9]{3}}; a '}' outside one is
// a literal), each wildcard named, and, in a pattern with a method
// (http.ServeMux's form), no name twice. chi reports a route mounted under
// a pattern with the mount's pattern in front, where a name may repeat
// ("/entities/{id}/users/{id}").
func checkWildcards(path string, unique bool) error {
	var names []string
	depth, start := 0, 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '{':
			if depth == 0 {
				start = i + 1
			}
			depth++
		case '}':
			if depth == 0 {
				continue // a literal, to http.ServeMux
			}
			if depth--; depth > 0 {
				continue
			}
			name := path[start:i]
			if j := strings.IndexByte(name, ':'); j >= 0 { // chi's {name:regexp}
				name = name[:j]
			}
			name = strings.TrimSuffix(name, "...") // ServeMux's {name...}
			if name == "" {
				return errors.New("a wildcard without a name")
			}
			if unique && name != "$" && slices.Contains(names, name) {
				return fmt.Errorf("wildcard {%s} twice", name)
			}
			names = append(names, name)
		}
	}
	if depth != 0 {
		return errors.New("a '{' is not closed")
	}
	return nil
}
