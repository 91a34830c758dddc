package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	casbinmodel "github.com/casbin/casbin/v2/model"

	"github.com/gatehouse-authz/gatehouse/internal/gen"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Fixture parameters. Every system sees the same dataset (seed 1) and the
// same requests (seed 2), in the same order.
const (
	dataSeed    = 1
	requestSeed = 2
	numRequests = 1 << 14 // a power of two: index with i&(numRequests-1)

	// casbinBuildLimit bounds the loading of Casbin's enforcer; past it the
	// Casbin benchmarks of that size are skipped with a message.
	casbinBuildLimit = 4 * time.Minute
	// casbinCallLimit: a size where one casbin.Enforce call of a denied
	// request (which scans every rule) takes longer, in CPU time, the median
	// of three such calls, is skipped. At 1,000,000 rules such a call takes
	// about a second on the VMs this project is measured on (1.011 s in one
	// report run, which a one-second limit skipped), so the limit leaves
	// room for a slower machine while still keeping a size where each call
	// took tens of seconds out of a run.
	casbinCallLimit = 3 * time.Second
	// casbinWarmBudget bounds the wall time spent warming CachedEnforcer's
	// keys: every key is one uncached casbin.Enforce call before the timer.
	casbinWarmBudget = 500 * time.Millisecond
	// minWarmKeys is the fewest keys warmed, whatever they cost.
	minWarmKeys = 8
)

// lazy is a value built once, on first use, and shared by every
// sub-benchmark that needs it (the testing package calls a benchmark
// function several times with growing b.N).
type lazy[T any] struct {
	once sync.Once
	v    *T
	err  error
}

// cache maps a rule count to its lazily built fixture.
type cache[T any] struct {
	mu sync.Mutex
	m  map[int]*lazy[T]
}

func (c *cache[T]) get(n int, build func(int) (*T, error)) (*T, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[int]*lazy[T]{}
	}
	l := c.m[n]
	if l == nil {
		l = &lazy[T]{}
		c.m[n] = l
	}
	c.mu.Unlock()
	l.once.Do(func() { l.v, l.err = build(n) })
	return l.v, l.err
}

// sizes returns the rule counts to benchmark (see Sizes).
func sizes(b *testing.B) []int {
	b.Helper()
	s, err := Sizes()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// forSizes runs f as the sub-benchmark "rules=N" of every configured size.
func forSizes(b *testing.B, f func(b *testing.B, n int)) {
	for _, n := range sizes(b) {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) { f(b, n) })
	}
}

// heapDelta runs build and returns the live heap it added, in bytes, and
// how long it took.
func heapDelta(build func() error) (int64, time.Duration, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := build()
	d := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), d, err
}

// cpuTime returns the CPU time the process has used (user and system, all
// goroutines). On a loaded machine it says more than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU runs f on a locked OS thread and returns the CPU time that
// thread spent in it (the wall clock when the thread's time is unavailable).
func threadCPU(f func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rusageThread = 1 // RUSAGE_THREAD
	var before, after syscall.Rusage
	start := time.Now()
	e1 := syscall.Getrusage(rusageThread, &before)
	err := f()
	e2 := syscall.Getrusage(rusageThread, &after)
	if e1 != nil || e2 != nil {
		return time.Since(start), err
	}
	cpu := func(ru *syscall.Rusage) time.Duration { return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()) }
	return cpu(&after) - cpu(&before), err
}

// reportCPU reports the process CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 && start > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// gateFixture is a Gatehouse engine over a generated dataset.
type gateFixture struct {
	ds      *gen.Dataset
	eng     *policy.Engine
	reqs    []policy.Request
	allowed []bool // Decide(reqs[i]).Allowed
	// balanced is the request stream reordered so that allowed and denied
	// requests interleave at the stream's share: every prefix of it has
	// (within one request) the allowed share of the whole stream. The
	// benchmarks that time only a few requests (Casbin's) take them from
	// it, in order.
	balanced    []int
	heapPerRule float64       // live heap of the engine per p rule
	build       time.Duration // time to load the engine
}

var gateCache cache[gateFixture]

func buildGate(n int) (*gateFixture, error) {
	fx := &gateFixture{ds: gen.New(dataSeed, n, model.DefaultCatalog())}
	fx.reqs = fx.ds.Requests(requestSeed, numRequests)
	heap, d, err := heapDelta(func() error {
		var err error
		fx.eng, err = policy.New(context.Background(), policy.WithStore(fx.ds))
		return err
	})
	if err != nil {
		return nil, err
	}
	fx.heapPerRule = float64(heap) / float64(fx.ds.PRules)
	fx.build = d
	fx.allowed = make([]bool, len(fx.reqs))
	for i, r := range fx.reqs {
		fx.allowed[i] = fx.eng.Decide(&r).Allowed
	}
	fx.balanced = balance(fx.allowed)
	return fx, nil
}

// balance returns the indexes of allowed, reordered so that after j of
// them floor(j*a/n) are allowed (a of n allowed in all), each class keeping
// its order.
func balance(allowed []bool) []int {
	var yes, no []int
	for i, ok := range allowed {
		if ok {
			yes = append(yes, i)
		} else {
			no = append(no, i)
		}
	}
	n, out := len(allowed), make([]int, 0, len(allowed))
	y := 0
	for j := 1; j <= n; j++ {
		if y < len(yes) && y < j*len(yes)/n {
			out = append(out, yes[y])
			y++
		} else {
			out = append(out, no[len(out)-y])
		}
	}
	return out
}

// share returns the share of allowed requests among idx.
func share(allowed []bool, idx []int) float64 {
	a := 0
	for _, i := range idx {
		if allowed[i] {
			a++
		}
	}
	return float64(a) / float64(max(1, len(idx)))
}

// gate returns the Gatehouse fixture of n rules, built on first use.
func gate(b *testing.B, n int) *gateFixture {
	b.Helper()
	fx, err := gateCache.get(n, buildGate)
	if err != nil {
		b.Fatalf("building the Gatehouse engine of %d rules: %v", n, err)
	}
	return fx
}

// datasetAdapter is a read-only Casbin persist.Adapter that streams
// a generated dataset into a Casbin model: the way an application loads its
// rules from a database at start-up.
type datasetAdapter struct {
	ds       *gen.Dataset
	deadline time.Time
}

var errBuildTimeout = errors.New("loading took too long")

// LoadPolicy implements persist.Adapter.
func (a *datasetAdapter) LoadPolicy(m casbinmodel.Model) error {
	i := 0
	return a.ds.Each(func(r model.Rule) error {
		if i++; i&4095 == 0 && !a.deadline.IsZero() && time.Now().After(a.deadline) {
			return errBuildTimeout
		}
		return m.AddPolicy(r.Section(), r.PType, r.Values)
	})
}

var errReadOnly = errors.New("datasetAdapter is read-only")

// SavePolicy implements persist.Adapter.
func (a *datasetAdapter) SavePolicy(casbinmodel.Model) error { return errReadOnly }

// AddPolicy implements persist.Adapter.
func (a *datasetAdapter) AddPolicy(string, string, []string) error { return errReadOnly }

// RemovePolicy implements persist.Adapter.
func (a *datasetAdapter) RemovePolicy(string, string, []string) error { return errReadOnly }

// RemoveFilteredPolicy implements persist.Adapter.
func (a *datasetAdapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errReadOnly
}

// casbinFixture is a Casbin CachedEnforcer over the same dataset. Its
// embedded *casbin.Enforcer is the plain enforcer: ce.Enforcer.Enforce
// never looks at the cache, so one loaded model serves both benchmarks.
type casbinFixture struct {
	g           *gateFixture
	ce          *casbin.CachedEnforcer
	args        [][]any // the requests as Enforce's arguments (sub, dom, obj, act, owner)
	heapPerRule float64
	build       time.Duration
	oneCall     time.Duration // CPU time of a denied request (a full scan), the median of three calls
	skip        string        // why the Casbin benchmarks of this size are skipped

	warmOnce sync.Once
	warm     int // the requests warmed in the cache: g.balanced[:warm]
	distinct int // distinct requests (cache keys) among them
	warmErr  error
}

var casbinCache cache[casbinFixture]

// casbinArgs returns r as casbin.Enforce's arguments on the model of package
// model (the form of the engine's differential test).
func casbinArgs(r policy.Request) []any {
	return []any{r.Subject.String(), "entity:" + string(r.Entity), string(r.Object), string(r.Action), r.Owner.String()}
}

func buildCasbin(n int) (*casbinFixture, error) {
	g, err := gateCache.get(n, buildGate)
	if err != nil {
		return nil, err
	}
	fx := &casbinFixture{g: g, args: make([][]any, len(g.reqs))}
	for i, r := range g.reqs {
		fx.args[i] = casbinArgs(r)
	}
	m, err := model.NewCasbinModel()
	if err != nil {
		return nil, err
	}
	ad := &datasetAdapter{ds: g.ds, deadline: time.Now().Add(casbinBuildLimit)}
	heap, d, err := heapDelta(func() error {
		var err error
		fx.ce, err = casbin.NewCachedEnforcer(m, ad)
		return err
	})
	if errors.Is(err, errBuildTimeout) {
		fx.skip = fmt.Sprintf("loading Casbin's enforcer with %d rules took over %v: skipped", n, casbinBuildLimit)
		return fx, nil
	}
	if err != nil {
		return nil, err
	}
	fx.heapPerRule = float64(heap) / float64(g.ds.PRules)
	fx.build = d

	// The same data must give the same answers: check the first requests
	// that the benchmarks time (those of g.balanced) against the engine
	// (the cost grows with n, so fewer at large sizes). The benchmarks
	// check every answer they time too.
	check := 200
	if n > 10_000 {
		check = 4
	}
	if n > 100_000 {
		check = 2
	}
	for _, i := range g.balanced[:check] {
		if err := fx.agree(i, fx.ce.Enforcer.Enforce); err != nil {
			return nil, err
		}
	}

	// A denied request scans every rule: the slowest call. Its cost is
	// taken as the CPU time of the thread that runs it, which the machine's
	// other load does not inflate as it does the wall clock, and as the
	// median of three such calls, so that one disturbed call does not decide
	// whether the size runs.
	var calls []time.Duration
	for i := range g.reqs {
		if len(calls) == 3 {
			break
		}
		if g.allowed[i] {
			continue
		}
		d, err := threadCPU(func() error {
			_, err := fx.ce.Enforcer.Enforce(fx.args[i]...)
			return err
		})
		if err != nil {
			return nil, err
		}
		calls = append(calls, d)
	}
	if len(calls) > 0 {
		slices.Sort(calls)
		fx.oneCall = calls[len(calls)/2]
	}
	if fx.oneCall > casbinCallLimit {
		fx.skip = fmt.Sprintf("one casbin.Enforce call of a denied request takes %v of CPU with %d rules (median of %d calls; the limit is %v): skipped", fx.oneCall.Round(time.Millisecond), n, len(calls), casbinCallLimit)
	}
	return fx, nil
}

// casbinFx returns the Casbin fixture of n rules, built on first use, or
// skips the benchmark when that size is too slow for Casbin.
func casbinFx(b *testing.B, n int) *casbinFixture {
	b.Helper()
	fx, err := casbinCache.get(n, buildCasbin)
	if err != nil {
		b.Fatalf("building the Casbin enforcer of %d rules: %v", n, err)
	}
	if fx.skip != "" {
		b.Skip(fx.skip)
	}
	return fx
}

// agree checks that enforce answers request i as Gatehouse's Decide does.
func (fx *casbinFixture) agree(i int, enforce func(...any) (bool, error)) error {
	got, err := enforce(fx.args[i]...)
	if err != nil {
		return err
	}
	if want := fx.g.allowed[i]; got != want {
		return fmt.Errorf("request %d %+v: casbin.Enforce says %v, Gatehouse %v", i, fx.g.reqs[i], got, want)
	}
	return nil
}

// warmKeys fills CachedEnforcer's cache with the first requests of the
// balanced stream (g.balanced), until casbinWarmBudget has passed (and at
// least minWarmKeys are warm) or the stream ends. It checks each answer
// against Decide's and returns the warmed requests' indexes.
// BenchmarkCasbinCached and BenchmarkDecideCachedKeys both cycle over
// exactly these requests.
func (fx *casbinFixture) warmKeys(b *testing.B) []int {
	b.Helper()
	fx.warmOnce.Do(func() {
		seen := map[policy.Request]bool{}
		start := time.Now()
		for n, i := range fx.g.balanced {
			if n >= minWarmKeys && time.Since(start) >= casbinWarmBudget {
				break
			}
			if fx.warmErr = fx.agree(i, fx.ce.Enforce); fx.warmErr != nil {
				return
			}
			fx.warm++
			seen[fx.g.reqs[i]] = true
		}
		fx.distinct = len(seen)
	})
	if fx.warmErr != nil {
		b.Fatal(fx.warmErr)
	}
	return fx.g.balanced[:fx.warm]
}
