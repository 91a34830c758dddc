package opabench

import (
	"context"
	_ "embed"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/gatehouse-authz/gatehouse/benchmarks"
	"github.com/gatehouse-authz/gatehouse/internal/gen"
	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

//go:embed policy.rego
var policySrc string

// The dataset and requests of package benchmarks.
const (
	dataSeed    = 1
	requestSeed = 2
	numRequests = 1 << 14
)

// fixture is a prepared OPA query over a generated dataset, with the
// Gatehouse engine of the same data to check it against.
type fixture struct {
	eng         *policy.Engine
	reqs        []policy.Request
	inputs      []ast.Value // reqs as OPA inputs
	pq          rego.PreparedEvalQuery
	heapPerRule float64
	build       time.Duration
}

var (
	mu       sync.Mutex
	fixtures = map[int]*lazyFixture{}
)

type lazyFixture struct {
	once sync.Once
	fx   *fixture
	err  error
}

func get(tb testing.TB, n int) *fixture {
	tb.Helper()
	mu.Lock()
	l := fixtures[n]
	if l == nil {
		l = &lazyFixture{}
		fixtures[n] = l
	}
	mu.Unlock()
	l.once.Do(func() { l.fx, l.err = build(n) })
	if l.err != nil {
		tb.Fatalf("building the OPA fixture of %d rules: %v", n, l.err)
	}
	return l.fx
}

// entityData is one entity of data.entities, while it is being built.
type entityData struct {
	partner, defaultRole string
	users                map[string]any
	roles                map[string]map[string]map[string]any
}

// documents turns the dataset's rules into OPA's data document.
func documents(ds *gen.Dataset) (map[string]any, error) {
	ents := map[string]*entityData{}
	ent := func(e model.EntityID) *entityData {
		d := ents[string(e)]
		if d == nil {
			d = &entityData{users: map[string]any{}, roles: map[string]map[string]map[string]any{}}
			ents[string(e)] = d
		}
		return d
	}
	role := func(d *entityData, r model.RoleID) map[string]map[string]any {
		m := d.roles[string(r)]
		if m == nil {
			m = map[string]map[string]any{}
			d.roles[string(r)] = m
		}
		return m
	}
	err := ds.Each(func(r model.Rule) error {
		f, err := rules.Decode(r)
		if err != nil {
			return err
		}
		d := ent(f.Entity)
		switch f.Kind {
		case rules.KindOwner:
			d.partner = string(f.Partner)
		case rules.KindRole:
			role(d, f.Role)
		case rules.KindPermission:
			objs := role(d, f.Role)
			acts := objs[string(f.Key.Object)]
			if acts == nil {
				acts = map[string]any{}
				objs[string(f.Key.Object)] = acts
			}
			acts[string(f.Key.Action)] = f.Perm.String()
		case rules.KindDefaultRole:
			d.defaultRole = string(f.Role)
		case rules.KindMember:
			d.users[string(f.User)] = string(f.Role)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(ents))
	for id, d := range ents {
		roles := make(map[string]any, len(d.roles))
		for r, objs := range d.roles {
			o := make(map[string]any, len(objs))
			for obj, acts := range objs {
				o[obj] = acts
			}
			roles[r] = o
		}
		out[id] = map[string]any{"partner": d.partner, "default_role": d.defaultRole, "users": d.users, "roles": roles}
	}
	return map[string]any{"entities": out}, nil
}

// input returns r as the policy's input.
func input(r policy.Request) (ast.Value, error) {
	kind := ""
	switch r.Subject.Kind {
	case model.KindUser:
		kind = "user"
	case model.KindPartner:
		kind = "partner"
	}
	return ast.InterfaceToValue(map[string]any{
		"kind": kind, "id": r.Subject.ID, "sub": r.Subject.String(), "entity": string(r.Entity),
		"object": string(r.Object), "action": string(r.Action), "owner": r.Owner.String(),
	})
}

func build(n int) (*fixture, error) {
	ctx := context.Background()
	ds := gen.New(dataSeed, n, model.DefaultCatalog())
	fx := &fixture{reqs: ds.Requests(requestSeed, numRequests)}
	var err error
	if fx.eng, err = policy.New(ctx, policy.WithStore(ds)); err != nil {
		return nil, err
	}
	fx.inputs = make([]ast.Value, len(fx.reqs))
	for i, r := range fx.reqs {
		if fx.inputs[i], err = input(r); err != nil {
			return nil, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	err = func() error {
		doc, err := documents(ds)
		if err != nil {
			return err
		}
		fx.pq, err = rego.New(
			rego.Query("data.gatehouse.allow"),
			rego.Module("policy.rego", policySrc),
			rego.Store(inmem.NewFromObject(doc)),
		).PrepareForEval(ctx)
		return err
	}()
	fx.build = time.Since(start)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	fx.heapPerRule = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(ds.PRules)

	// The same data must give the same answers.
	for i := range min(1000, len(fx.reqs)) {
		got, err := fx.allow(ctx, i)
		if err != nil {
			return nil, err
		}
		if want := fx.eng.Decide(&fx.reqs[i]).Allowed; got != want {
			return nil, fmt.Errorf("request %d %+v: OPA says %v, Gatehouse %v", i, fx.reqs[i], got, want)
		}
	}
	return fx, nil
}

// allow evaluates request i.
func (fx *fixture) allow(ctx context.Context, i int) (bool, error) {
	rs, err := fx.pq.Eval(ctx, rego.EvalParsedInput(fx.inputs[i]))
	if err != nil {
		return false, err
	}
	return rs.Allowed(), nil
}

func sizes(b *testing.B) []int {
	s, err := benchmarks.Sizes()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOPA measures one evaluation of the prepared query
// data.gatehouse.allow over N permission rules, on the requests of
// BenchmarkDecide. It reports the live heap of OPA's store and compiled
// policy per permission rule (heapB/rule) and the time to build them
// (load-ms).
func BenchmarkOPA(b *testing.B) {
	for _, n := range sizes(b) {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			fx := get(b, n)
			ctx := context.Background()
			allowed := 0
			b.ReportAllocs()
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				ok, err := fx.allow(ctx, i&(numRequests-1))
				if err != nil {
					b.Fatal(err)
				}
				if ok {
					allowed++
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
			b.ReportMetric(fx.heapPerRule, "heapB/rule")
			b.ReportMetric(float64(fx.build)/1e6, "load-ms")
		})
	}
}

// TestAgreesWithGatehouse checks OPA's answer to every generated request
// against Gatehouse's Decide.
func TestAgreesWithGatehouse(t *testing.T) {
	ns := []int{1_000, 10_000}
	if testing.Short() {
		ns = ns[:1]
	}
	ctx := context.Background()
	for _, n := range ns {
		fx := get(t, n)
		allowed := 0
		for i, r := range fx.reqs {
			got, err := fx.allow(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			if want := fx.eng.Decide(&r).Allowed; got != want {
				t.Fatalf("%d rules, request %d %+v: OPA says %v, Gatehouse %v", n, i, r, got, want)
			}
			if got {
				allowed++
			}
		}
		t.Logf("%d rules: %d requests agree, %d allowed", n, len(fx.reqs), allowed)
	}
}
