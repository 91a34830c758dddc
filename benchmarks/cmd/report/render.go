package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Info describes the run, for the report's header.
type Info struct {
	GOOS, GOARCH string
	CPU          string // model name
	NumCPU       int
	GoVersion    string
	LoadAvg      string // /proc/loadavg at the start, "" when unknown
	Date         string
	Command      string // the go test command line(s)
	Benchtime    string
	Count        int // runs of each benchmark (go test -count); the median is shown
	Sizes        string
	SVG          string // the chart's path relative to the report, "" for none
}

// system is one authorization implementation in the comparison.
type system struct {
	bench string // benchmark name without "Benchmark"
	label string
	color string // chart colour
}

// cachedBench is Casbin's CachedEnforcer, whose ratio is taken against
// sameKeysBench: Gatehouse's Decide over the same warm requests.
const (
	cachedBench   = "CasbinCached"
	sameKeysBench = "DecideCachedKeys"
)

// systems are compared with Gatehouse's Decide, in this order (the
// CachedEnforcer with sameKeysBench).
var systems = []system{
	{"Decide", "Gatehouse Decide", "#1b7837"},
	{"CasbinEnforce", "casbin.Enforce", "#b2182b"},
	{"CasbinCached", "Casbin CachedEnforcer (warm keys)", "#ef8a62"},
	{"OPA", "OPA (prepared rego query)", "#2166ac"},
	{"TwoMap", "bare two-map lookup (yardstick)", "#999999"},
}

// present returns the systems with at least one result or skip in o.
func present(o *Output) []system {
	var out []system
	for _, s := range systems {
		if o.has(s.bench) {
			out = append(out, s)
		}
	}
	return out
}

func (o *Output) has(bench string) bool {
	for _, r := range o.Results {
		if r.Bench == bench {
			return true
		}
	}
	for _, n := range o.Skips {
		if strings.HasPrefix(n.Name, "Benchmark"+bench+"/") || n.Name == "Benchmark"+bench {
			return true
		}
	}
	return false
}

// subs returns the sub-benchmarks of bench that have results, in the
// order of their first result.
func (o *Output) subs(bench string) []string {
	var out []string
	for _, r := range o.Results {
		if r.Bench == bench && !slices.Contains(out, r.Sub) {
			out = append(out, r.Sub)
		}
	}
	return out
}

// skipped returns the skip message of bench at rules, if it was skipped.
func (o *Output) skipped(bench string, rules int) (string, bool) {
	name := fmt.Sprintf("Benchmark%s/rules=%d", bench, rules)
	for _, n := range o.Skips {
		if n.Name == name {
			return n.Message, true
		}
	}
	return "", false
}

// Markdown writes the report: machine, latency and ratio tables, memory,
// Gatehouse's other paths, the middleware and HTTP comparisons, and notes.
func Markdown(w io.Writer, o *Output, info Info) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Gatehouse authorization latency against Casbin\n\n")
	p("| machine | |\n|---|---|\n")
	p("| OS/arch | %s/%s |\n", info.GOOS, info.GOARCH)
	p("| CPU | %s |\n", info.CPU)
	p("| CPUs (runtime.NumCPU) | %d |\n", info.NumCPU)
	p("| Go | %s |\n", info.GoVersion)
	if info.LoadAvg != "" {
		p("| load average at start | %s |\n", info.LoadAvg)
	}
	if info.Date != "" {
		p("| date | %s |\n", info.Date)
	}
	if info.Benchtime != "" {
		p("| -benchtime | %s |\n", info.Benchtime)
	}
	if info.Count > 1 {
		p("| -count | %d (each number is from the median run by ns/op) |\n", info.Count)
	}
	if info.Sizes != "" {
		p("| sizes (p rules) | %s |\n", info.Sizes)
	}
	p("\n")
	if info.Command != "" {
		p("Command: `%s`\n\n", info.Command)
	}

	sys := present(o)
	sizes := o.Sizes()
	p("## Decision latency, one goroutine (wall clock)\n\n")
	p("Ratios are measured in the same run: the other system's time divided by Gatehouse's: above 1, Gatehouse is faster; below 1 (as against the bare two-map yardstick), it is slower. ")
	p("CachedEnforcer cycles over a sample of warm requests (keys: how many distinct ones); its ratio is to Gatehouse's Decide over exactly the same requests in the same run (\"same keys\"), not to Decide over the whole stream.\n\n")
	latencyTable(p, o, sys, sizes, "", "latency")
	p("\n## Decision cost in CPU time\n\n")
	p("Process CPU time per decision (cpu-ns/op: user and system time of all goroutines, GC included, divided by the iterations). On a shared machine it is disturbed less than the wall clock.\n\n")
	latencyTable(p, o, sys, sizes, "cpu-ns/op", "CPU")
	if info.SVG != "" {
		p("\n![latency against rule count, log-log](%s)\n", info.SVG)
	}

	p("\n## Memory and loading\n\n")
	p("heapB/rule: live heap kept by the engine or enforcer, per permission rule (HeapAlloc after GC, after loading minus before). load: time to load the rules.\n\n")
	var memSys []system
	for _, s := range sys {
		if s.bench != "CasbinCached" {
			memSys = append(memSys, s)
		}
	}
	p("| rules |")
	for _, s := range memSys {
		p(" %s heapB/rule | %s load |", s.label, s.label)
	}
	p("\n|---:|")
	for range memSys {
		p("---:|---:|")
	}
	p("\n")
	for _, n := range sizes {
		p("| %s |", fmtInt(float64(n)))
		for _, s := range memSys {
			r, ok := o.Find(s.bench, "", n)
			h, ok1 := r.Metric("heapB/rule")
			l, ok2 := r.Metric("load-ms")
			switch {
			case ok && ok1 && ok2:
				p(" %s | %s |", fmtFloat(h), fmtDur(l*1e6))
			default:
				p(" %s | |", missing(o, s.bench, n))
			}
		}
		p("\n")
	}

	if o.has("DecideParallel") || o.has("Scope") || o.has("PolicyChange") {
		p("\n## Gatehouse: other paths\n\n")
		p("| rules | Decide, all cores (RunParallel) | Scope (list query) | PolicyChange: UpdateRole until Decide sees it | allocs/op |\n|---:|---:|---:|---:|---:|\n")
		for _, n := range sizes {
			p("| %s | %s | %s | %s | %s |\n", fmtInt(float64(n)),
				cell(o, "DecideParallel", "", n), cell(o, "Scope", "", n), cell(o, "PolicyChange", "", n), allocs(o, "PolicyChange", "", n))
		}
	}

	if floor := o.subs("MemoryFloor"); len(floor) > 0 {
		p("\n## The machine's memory floor\n\n")
		p("BenchmarkMemoryFloor measures the machine, not Gatehouse: one random read that depends on the read before it, " +
			"in a buffer of the given size. It is the floor under any lookup that must fetch a line it has not read lately " +
			"from tables of that size (compare the engine's heap: heapB/rule times the rules).\n\n")
		p("| buffer | one dependent read |\n|---:|---:|\n")
		for _, sub := range floor {
			if r, ok := o.Find("MemoryFloor", sub, 0); ok {
				p("| %s | %s |\n", strings.TrimPrefix(sub, "MB=")+" MB", fmtDur(r.NsPerOp))
			}
		}
	}

	if bare, ok := o.Find("Middleware", "bare", 0); ok {
		p("\n## HTTP middleware (httptest recorder, one goroutine)\n\n")
		p("| route | latency | CPU | B/op | allocs/op | added to bare |\n|---|---:|---:|---:|---:|---:|\n")
		for _, sub := range []string{"bare", "gatehouse", "gatehouse-denied"} {
			r, ok := o.Find("Middleware", sub, 0)
			if !ok {
				continue
			}
			added := ""
			if sub != "bare" {
				added = "+" + fmtDur(r.NsPerOp-bare.NsPerOp)
			}
			cpu := ""
			if v, ok := r.Metric("cpu-ns/op"); ok {
				cpu = fmtDur(v)
			}
			p("| %s | %s | %s | %s | %s | %s |\n", sub, fmtDur(r.NsPerOp), cpu, fmtInt(r.Metrics["B/op"]), fmtInt(r.Metrics["allocs/op"]), added)
		}
	}

	if r, ok := o.Find("HTTP", "", 0); ok {
		p("\n## Requests per second on loopback (127.0.0.1)\n\n")
		p("One server, one run; 8 keep-alive clients on the same machine, routes rotating every 500 requests, %s requests per route. "+
			"/bare and /gatehouse serve the same tiny handler, without and with Gatehouse (token verification, entity, decision); "+
			"the example server answers GET /payables/{id} for an entity user (Gatehouse, then a SQLite read).\n\n", fmtInt(float64(r.N)))
		p("| bare req/s | behind Gatehouse req/s | Gatehouse ÷ bare | example server req/s | authorization's share of an example-server request | decision under load, p50 / p99 |\n|---:|---:|---:|---:|---:|---:|\n")
		dec := ""
		if p50, ok := r.Metric("decision-p50-us"); ok {
			p99, _ := r.Metric("decision-p99-us")
			dec = fmtDur(p50*1e3) + " / " + fmtDur(p99*1e3)
		}
		share := ""
		if v, ok := r.Metric("authz-share"); ok {
			share = fmt.Sprintf("%.1f%%", 100*v)
		}
		p("| %s | %s | %.2f | %s | %s | %s |\n", fmtInt(r.Metrics["bare-req/s"]), fmtInt(r.Metrics["gatehouse-req/s"]), r.Metrics["gatehouse/bare"],
			fmtInt(r.Metrics["server-req/s"]), share, dec)
		p("\nThe share is the time Gatehouse adds per request (/gatehouse less /bare, from their req/s) over the example server's time per request; " +
			"the decision times are the middleware's own measurement (DecisionEvent.Latency) of the example server's requests during the run.\n")
	}

	if len(o.Skips) > 0 || len(o.Failures) > 0 {
		p("\n## Skipped and failed\n\n")
		for _, n := range o.Skips {
			p("- skipped %s: %s\n", n.Name, n.Message)
		}
		for _, n := range o.Failures {
			p("- **failed** %s: %s\n", n.Name, n.Message)
		}
	}
	p("\ncasbin.Enforce is timed on the first b.N requests of the stream reordered so that allowed and denied interleave at the stream's share " +
		"(at large sizes b.N is a handful); each answer it times is checked against Decide's on the same request, and a disagreement fails the benchmark.\n")
	p("\nSizes are permission (p) rules of a dataset from internal/gen (seed 1); the requests (seed 2) mix allowed and denied. " +
		"1,000,000 rules run only when asked (GATEHOUSE_BENCH_FULL=1 or GATEHOUSE_BENCH_SIZES, which the report's -sizes flag sets). See benchmarks/doc.go.\n")
}

// latencyTable writes one row per size: each system's time (ns/op, or the
// metric unit when set), its allocs/op, and its ratio to Gatehouse's Decide.
func latencyTable(p func(string, ...any), o *Output, sys []system, sizes []int, unit, what string) {
	p("| rules |")
	for _, s := range sys {
		p(" %s %s |", s.label, what)
		if unit == "" {
			p(" allocs/op |")
		}
		switch s.bench {
		case "Decide":
		case cachedBench:
			p(" keys | Gatehouse Decide on the same keys %s | ÷ Gatehouse (same keys) |", what)
		default:
			p(" ÷ Gatehouse |")
		}
	}
	p("\n|---:|")
	for _, s := range sys {
		p("---:|")
		if unit == "" {
			p("---:|")
		}
		switch s.bench {
		case "Decide":
		case cachedBench:
			p("---:|---:|---:|")
		default:
			p("---:|")
		}
	}
	p("\n")
	value := func(r Result) (float64, bool) {
		if unit == "" {
			return r.NsPerOp, r.NsPerOp > 0
		}
		v, ok := r.Metric(unit)
		return v, ok && v > 0
	}
	for _, n := range sizes {
		p("| %s |", fmtInt(float64(n)))
		base := math.NaN()
		if r, ok := o.Find("Decide", "", n); ok {
			if v, ok := value(r); ok {
				base = v
			}
		}
		for _, s := range sys {
			r, ok := o.Find(s.bench, "", n)
			v, okv := value(r)
			if !ok || !okv {
				p(" %s |", missing(o, s.bench, n))
				if unit == "" {
					p(" |")
				}
				switch s.bench {
				case "Decide":
				case cachedBench:
					p(" | | |")
				default:
					p(" |")
				}
				continue
			}
			p(" %s |", fmtDur(v))
			if unit == "" {
				p(" %s |", fmtInt(r.Metrics["allocs/op"]))
			}
			b := base
			if s.bench == cachedBench {
				// CachedEnforcer answers a few warm keys: compare it with
				// Decide over the same keys, not over the whole stream.
				keys := ""
				if k, ok := r.Metric("keys"); ok {
					keys = fmtInt(k)
				}
				b = math.NaN()
				same := missing(o, sameKeysBench, n)
				if d, ok := o.Find(sameKeysBench, "", n); ok {
					if dv, ok := value(d); ok {
						b, same = dv, fmtDur(dv)
					}
				}
				p(" %s | %s |", keys, same)
			}
			if s.bench != "Decide" {
				if math.IsNaN(b) {
					p(" |")
				} else {
					p(" %s |", fmtRatio(v/b))
				}
			}
		}
		p("\n")
	}
}

// missing is the cell of a benchmark with no result at a size.
func missing(o *Output, bench string, n int) string {
	if _, ok := o.skipped(bench, n); ok {
		return "skipped"
	}
	return "—"
}

func cell(o *Output, bench, sub string, n int) string {
	if r, ok := o.Find(bench, sub, n); ok {
		return fmtDur(r.NsPerOp)
	}
	return missing(o, bench, n)
}

func allocs(o *Output, bench, sub string, n int) string {
	if r, ok := o.Find(bench, sub, n); ok {
		return fmtInt(r.Metrics["allocs/op"])
	}
	return ""
}

// fmtDur formats nanoseconds with three significant digits and a unit.
func fmtDur(ns float64) string {
	switch a := math.Abs(ns); {
	case a < 1e3:
		return sig3(ns) + " ns"
	case a < 1e6:
		return sig3(ns/1e3) + " µs"
	case a < 1e9:
		return sig3(ns/1e6) + " ms"
	default:
		return sig3(ns/1e9) + " s"
	}
}

// sig3 formats x with three significant digits (at least its integer part).
func sig3(x float64) string {
	switch a := math.Abs(x); {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

// fmtRatio formats a ratio as "1,234×", "45×" or "2.5×".
func fmtRatio(x float64) string {
	switch {
	case x >= 100:
		return fmtInt(x) + "×"
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 0, 64) + "×"
	default:
		return strconv.FormatFloat(x, 'f', 1, 64) + "×"
	}
}

// fmtFloat formats a small measured quantity: one decimal below 100.
func fmtFloat(x float64) string {
	if math.Abs(x) < 100 {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return fmtInt(x)
}

// fmtInt rounds x and groups its digits by thousands: "1,234,567".
func fmtInt(x float64) string {
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
