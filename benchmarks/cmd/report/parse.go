package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Result is one benchmark line of `go test -bench` output.
type Result struct {
	Name    string             // full name without the GOMAXPROCS suffix: "BenchmarkDecide/rules=1000"
	Bench   string             // the top-level benchmark without "Benchmark": "Decide"
	Sub     string             // the sub-benchmark path without "rules=N": "gatehouse" in "BenchmarkMiddleware/gatehouse"
	Rules   int                // N of a "rules=N" element, 0 when there is none
	Procs   int                // the GOMAXPROCS suffix, 1 when absent
	N       int64              // iterations
	NsPerOp float64            // ns/op
	Metrics map[string]float64 // every other value by unit: "B/op", "allocs/op", "heapB/rule", ...
	Pkg     string             // the package that ran it
}

// Metric returns the value of unit, and whether the line had it.
func (r Result) Metric(unit string) (float64, bool) {
	v, ok := r.Metrics[unit]
	return v, ok
}

// Note is a skipped or failed benchmark with the message it logged.
type Note struct {
	Name    string // "BenchmarkCasbinEnforce/rules=1000000"
	Message string // the first line it logged, without the file:line prefix
}

// Output is what Parse reads from one or more `go test -bench` runs.
type Output struct {
	Goos, Goarch, CPU string
	Pkgs              []string
	Results           []Result
	Skips             []Note
	Failures          []Note
}

// Parse reads `go test -bench` output (several packages' concatenated are
// fine). It keeps benchmark lines, the goos/goarch/pkg/cpu header lines and
// the "--- SKIP" and "--- FAIL" notes with their first message; it ignores
// everything else. A benchmark line it cannot read is an error.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	pkg := ""
	var pending *[]Note // the note list waiting for its message line
	// With -v, a benchmark's name is printed alone first and its log lines
	// come before its "--- SKIP" line.
	lastName, lastMsg := "", ""
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if pending != nil {
			notes := *pending
			if trimmed != "" && (line[0] == ' ' || line[0] == '\t') {
				if notes[len(notes)-1].Message == "" {
					notes[len(notes)-1].Message = stripFileLine(trimmed)
				}
				continue
			}
			pending = nil
		}
		if lastName != "" && trimmed != "" && (line[0] == ' ' || line[0] == '\t') {
			if lastMsg == "" {
				lastMsg = stripFileLine(trimmed)
			}
			continue
		}
		if i := inlineNote(line); i > 0 && strings.HasPrefix(line, "Benchmark") {
			// Without -v, a benchmark that fails or skips after its first
			// run has its name and the "--- FAIL: ..." on one line: read
			// the note as if on a line of its own.
			trimmed, lastName, lastMsg = line[i:], "", ""
		}
		switch {
		case strings.HasPrefix(line, "goos: "):
			out.Goos = strings.TrimPrefix(line, "goos: ")
		case strings.HasPrefix(line, "goarch: "):
			out.Goarch = strings.TrimPrefix(line, "goarch: ")
		case strings.HasPrefix(line, "cpu: "):
			out.CPU = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
			out.Pkgs = append(out.Pkgs, pkg)
		case strings.HasPrefix(trimmed, "--- SKIP: "):
			out.Skips = append(out.Skips, note(trimmed, "--- SKIP: ", lastName, lastMsg))
			pending = &out.Skips
		case strings.HasPrefix(trimmed, "--- FAIL: "):
			out.Failures = append(out.Failures, note(trimmed, "--- FAIL: ", lastName, lastMsg))
			pending = &out.Failures
		case strings.HasPrefix(line, "Benchmark"):
			res, ok, err := parseLine(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			lastName, lastMsg = "", ""
			if ok {
				res.Pkg = pkg
				out.Results = append(out.Results, res)
			} else if f := strings.Fields(line); len(f) == 1 {
				lastName = trimProcs(f[0])
			}
			continue
		}
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			lastName, lastMsg = "", ""
		}
	}
	return out, sc.Err()
}

// inlineNote returns the index of a "--- FAIL: " or "--- SKIP: " that
// follows a benchmark's name on its line, or -1.
func inlineNote(line string) int {
	for _, p := range []string{"--- FAIL: ", "--- SKIP: "} {
		if i := strings.Index(line, p); i > 0 {
			return i
		}
	}
	return -1
}

// note makes the Note of a "--- SKIP: Name" line, with the message logged
// before it when the benchmark's name was printed alone (-v).
func note(line, prefix, lastName, lastMsg string) Note {
	n := Note{Name: noteName(line, prefix)}
	if n.Name == lastName {
		n.Message = lastMsg
	}
	return n
}

// noteName returns the benchmark name of a "--- SKIP: Name (0.00s)" line.
func noteName(line, prefix string) string {
	f := strings.Fields(strings.TrimPrefix(line, prefix))
	if len(f) == 0 {
		return ""
	}
	return trimProcs(f[0])
}

// stripFileLine removes the "file_test.go:123: " prefix of a logged line.
func stripFileLine(s string) string {
	if i := strings.Index(s, ": "); i > 0 {
		if j := strings.LastIndexByte(s[:i], ':'); j > 0 && strings.Contains(s[:j], ".go") {
			if _, err := strconv.Atoi(s[j+1 : i]); err == nil {
				return s[i+2:]
			}
		}
	}
	return s
}

// trimProcs removes a "-N" GOMAXPROCS suffix.
func trimProcs(name string) string {
	n, _ := splitProcs(name)
	return n
}

func splitProcs(name string) (string, int) {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if p, err := strconv.Atoi(name[i+1:]); err == nil && p > 0 {
			return name[:i], p
		}
	}
	return name, 1
}

// parseLine reads "BenchmarkX/rules=10-2  100  12.5 ns/op  0 B/op ...".
// A benchmark name printed alone (as with -v) is not a
// result and gives ok false; any other line starting with "Benchmark" must
// be a result: the name, a positive iteration count and value/unit pairs,
// or it is an error (a truncated or garbled line must not silently drop a
// number from the report).
func parseLine(line string) (Result, bool, error) {
	f := strings.Fields(line)
	if len(f) == 1 {
		return Result{}, false, nil
	}
	if len(f) < 4 || len(f)%2 != 0 {
		return Result{}, false, fmt.Errorf("malformed benchmark line %q: want a name, an iteration count and value/unit pairs", line)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, false, fmt.Errorf("bad iteration count %q in %q", f[1], f[0])
	}
	r := Result{N: n, Metrics: map[string]float64{}}
	r.Name, r.Procs = splitProcs(f[0])
	parts := strings.Split(strings.TrimPrefix(r.Name, "Benchmark"), "/")
	r.Bench = parts[0]
	var sub []string
	for _, p := range parts[1:] {
		if v, ok := strings.CutPrefix(p, "rules="); ok {
			if r.Rules, err = strconv.Atoi(v); err != nil {
				return Result{}, false, fmt.Errorf("bad rule count in %q", f[0])
			}
			continue
		}
		sub = append(sub, p)
	}
	r.Sub = strings.Join(sub, "/")
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			// ParseFloat accepts "NaN" and "Inf", which no benchmark
			// measures and which the chart's scale cannot hold.
			return Result{}, false, fmt.Errorf("bad value %q for %s in %q", f[i], f[i+1], f[0])
		}
		if f[i+1] == "ns/op" {
			r.NsPerOp = v
		} else {
			r.Metrics[f[i+1]] = v
		}
	}
	return r, true, nil
}

// Find returns the result of bench/sub at rules (rules 0: none), and
// whether there is one. With several runs of it (go test -count), it
// returns the median run by ns/op (the lower middle one of an even
// number), so that one disturbed run does not make the report.
func (o *Output) Find(bench, sub string, rules int) (Result, bool) {
	var runs []Result
	for _, r := range o.Results {
		if r.Bench == bench && r.Sub == sub && r.Rules == rules {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		return Result{}, false
	}
	slices.SortStableFunc(runs, func(a, b Result) int { return cmp.Compare(a.NsPerOp, b.NsPerOp) })
	return runs[(len(runs)-1)/2], true
}

// Sizes returns the rule counts present in the results and skips,
// ascending.
func (o *Output) Sizes() []int {
	seen := map[int]bool{}
	var out []int
	add := func(n int) {
		if n > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, r := range o.Results {
		add(r.Rules)
	}
	for _, n := range o.Skips {
		if i := strings.Index(n.Name, "/rules="); i >= 0 {
			v, _, _ := strings.Cut(n.Name[i+len("/rules="):], "/")
			k, _ := strconv.Atoi(v)
			add(k)
		}
	}
	slices.Sort(out)
	return out
}

// Merge appends o2's results and notes to o, keeping o's header where set.
func (o *Output) Merge(o2 *Output) {
	if o.Goos == "" {
		o.Goos = o2.Goos
	}
	if o.Goarch == "" {
		o.Goarch = o2.Goarch
	}
	if o.CPU == "" {
		o.CPU = o2.CPU
	}
	o.Pkgs = append(o.Pkgs, o2.Pkgs...)
	o.Results = append(o.Results, o2.Results...)
	o.Skips = append(o.Skips, o2.Skips...)
	o.Failures = append(o.Failures, o2.Failures...)
}
