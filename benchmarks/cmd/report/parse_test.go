package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) *Output {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestParseSample reads output captured from a real run (sizes 1k and 10k,
// -benchtime 200x).
func TestParseSample(t *testing.T) {
	o := parseFile(t, "testdata/sample.txt")
	if o.Goos != "linux" || o.Goarch != "amd64" || o.CPU == "" || len(o.Pkgs) != 1 {
		t.Errorf("header: %+v", o)
	}
	if got := len(o.Results); got != 16 {
		t.Errorf("%d results, want 16", got)
	}
	if got := o.Sizes(); len(got) != 2 || got[0] != 1000 || got[1] != 10000 {
		t.Errorf("sizes %v", got)
	}
	d, ok := o.Find("Decide", "", 1000)
	if !ok {
		t.Fatal("no BenchmarkDecide/rules=1000")
	}
	if d.Name != "BenchmarkDecide/rules=1000" || d.Procs != 2 || d.N != 200 || d.NsPerOp != 274.1 {
		t.Errorf("Decide: %+v", d)
	}
	if v, _ := d.Metric("allocs/op"); v != 0 {
		t.Errorf("allocs/op %v", v)
	}
	if v, _ := d.Metric("heapB/rule"); v != 48.88 {
		t.Errorf("heapB/rule %v", v)
	}
	c, ok := o.Find("CasbinEnforce", "", 10000)
	if !ok || c.NsPerOp != 128912412 || c.Metrics["allocs/op"] != 38974 || c.Metrics["B/op"] != 1474871 {
		t.Errorf("CasbinEnforce/rules=10000: %+v", c)
	}
	m, ok := o.Find("Middleware", "gatehouse-denied", 0)
	if !ok || m.Rules != 0 || m.Name != "BenchmarkMiddleware/gatehouse-denied" {
		t.Errorf("middleware: %+v", m)
	}
	h, ok := o.Find("HTTP", "", 0)
	if !ok || h.Metrics["gatehouse/bare"] != 1.097 || h.Metrics["bare-req/s"] != 32418 {
		t.Errorf("HTTP: %+v", h)
	}
	if len(o.Skips) != 0 || len(o.Failures) != 0 {
		t.Errorf("notes: %+v %+v", o.Skips, o.Failures)
	}
}

func TestParseSkipAndFail(t *testing.T) {
	o := parseFile(t, "testdata/skip.txt")
	if len(o.Results) != 1 {
		t.Fatalf("results: %+v", o.Results)
	}
	want := Note{"BenchmarkCasbinEnforce/rules=1000000", "one casbin.Enforce call takes 1.234s of CPU with 1000000 rules (over 1s): skipped"}
	if len(o.Skips) != 1 || o.Skips[0] != want {
		t.Errorf("skips: %+v", o.Skips)
	}
	if len(o.Failures) != 1 || o.Failures[0] != (Note{"BenchmarkMiddleware/gatehouse-denied", "status 500, want 403"}) {
		t.Errorf("failures: %+v", o.Failures)
	}
	if msg, ok := o.skipped("CasbinEnforce", 1_000_000); !ok || !strings.Contains(msg, "over 1s") {
		t.Errorf("skipped: %q %v", msg, ok)
	}
}

// TestParseVerbose reads output captured with -v, where a skipped
// benchmark's message comes before its "--- SKIP" line.
func TestParseVerbose(t *testing.T) {
	o := parseFile(t, "testdata/skip-verbose.txt")
	if len(o.Results) != 0 || len(o.Skips) != 2 {
		t.Fatalf("%+v", o)
	}
	for i, name := range []string{"BenchmarkCasbinEnforce/rules=1000000", "BenchmarkCasbinCached/rules=1000000"} {
		if n := o.Skips[i]; n.Name != name || !strings.HasPrefix(n.Message, "one casbin.Enforce call takes 4.768s of CPU") {
			t.Errorf("skip %d: %+v", i, n)
		}
	}
	if got := o.Sizes(); len(got) != 1 || got[0] != 1_000_000 {
		t.Errorf("sizes %v", got)
	}
}

func TestParseLineErrors(t *testing.T) {
	if _, err := Parse(strings.NewReader("BenchmarkX-2  10  abc ns/op\n")); err == nil {
		t.Error("a bad value was accepted")
	}
	// A name printed alone (-v, or before a skip) is not a result.
	o, err := Parse(strings.NewReader("BenchmarkX/rules=5\nBenchmarkY-4 10 5 ns/op\n"))
	if err != nil || len(o.Results) != 1 || o.Results[0].Procs != 4 || o.Results[0].Bench != "Y" {
		t.Errorf("%+v %v", o, err)
	}
}

func TestReport(t *testing.T) {
	o := parseFile(t, "testdata/sample.txt")
	o.Merge(parseFile(t, "testdata/skip.txt"))
	var md bytes.Buffer
	Markdown(&md, o, Info{GOOS: "linux", GOARCH: "amd64", CPU: "Test CPU", NumCPU: 2, GoVersion: "go1.26", SVG: "latency.svg"})
	s := md.String()
	for _, want := range []string{
		"| CPU | Test CPU |",
		"the other system's time divided by Gatehouse's: above 1, Gatehouse is faster",
		"| 1,000 | 274 ns | 0 | 18.3 ms | 4,175 | 66,922× |", // 18343419 / 274.1
		"| 100,000 | — | | 412 ms | 390,000 | |",
		"| 1,000,000 | — | | skipped | | |",
		"![latency against rule count, log-log](latency.svg)",
		"| gatehouse | 2.55 µs |",
		"| 32,418 | 35,573 | 1.10 |",
		"- skipped BenchmarkCasbinEnforce/rules=1000000: one casbin.Enforce call",
		"- **failed** BenchmarkMiddleware/gatehouse-denied: status 500, want 403",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}

	var svg bytes.Buffer
	if err := SVG(&svg, o, "a <title> & more"); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	polylines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 3 { // Decide, CasbinEnforce, CasbinCached
		t.Errorf("%d lines in the chart, want 3", polylines)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtDur(38.25), "38.2 ns"}, {fmtDur(1234), "1.23 µs"}, {fmtDur(5.5e9), "5.50 s"},
		{fmtRatio(12345.6), "12,346×"}, {fmtRatio(2.54), "2.5×"}, {fmtInt(-1234567), "-1,234,567"},
		{countLabel(6), "1M"}, {countLabel(4), "10k"}, {durLabel(3), "1 µs"}, {durLabel(8), "100 ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestFindMedianRun checks that with several runs of a benchmark (go test
// -count) the report takes the median one, whatever their order.
func TestFindMedianRun(t *testing.T) {
	const out = `BenchmarkDecide/rules=1000-2   	 100	       300.0 ns/op
BenchmarkDecide/rules=1000-2   	 100	       100.0 ns/op
BenchmarkDecide/rules=1000-2   	 100	       200.0 ns/op
BenchmarkDecide/rules=10000-2  	 100	       900.0 ns/op
BenchmarkDecide/rules=10000-2  	 100	       700.0 ns/op
`
	o, err := Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rules int
		want  float64
	}{{1000, 200}, {10000, 700}} {
		r, ok := o.Find("Decide", "", c.rules)
		if !ok || r.NsPerOp != c.want {
			t.Errorf("rules=%d: Find = %v, %v; want the median run, %v ns/op", c.rules, r.NsPerOp, ok, c.want)
		}
	}
	if _, ok := o.Find("Decide", "", 5); ok {
		t.Error("found a size that did not run")
	}
}

// TestReportCachedSameKeys checks that CachedEnforcer's ratio is taken
// against Decide over the same warm keys, shown next to it with the number
// of keys, not against Decide over the whole stream.
func TestReportCachedSameKeys(t *testing.T) {
	const out = `BenchmarkDecide/rules=1000-2               	 1584204	        100.0 ns/op	         0.6646 allowed/op	        80.00 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkCasbinCached/rules=1000-2         	  636375	       300.0 ns/op	       240.0 cpu-ns/op	       124.0 keys	         0.6613 sample-allowed	     168 B/op	       3 allocs/op
BenchmarkDecideCachedKeys/rules=1000-2     	 1723276	        60.00 ns/op	        60.00 cpu-ns/op	       124.0 keys	       0 B/op	       0 allocs/op
BenchmarkDecide/rules=10000-2              	 1584204	        100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkCasbinCached/rules=10000-2        	  636375	       300.0 ns/op	        27.00 keys	     168 B/op	       3 allocs/op
`
	o, err := Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	Markdown(&md, o, Info{})
	s := md.String()
	for _, want := range []string{
		"| Casbin CachedEnforcer (warm keys) latency | allocs/op | keys | Gatehouse Decide on the same keys latency | ÷ Gatehouse (same keys) |",
		"| 1,000 | 100 ns | 0 | 300 ns | 3 | 124 | 60.0 ns | 5.0× |",
		"| 1,000 | 80.0 ns | 240 ns | 124 | 60.0 ns | 4.0× |",
		"| 10,000 | 100 ns | 0 | 300 ns | 3 | 27 | — | |", // no same-keys run: no ratio
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestParseRejectsNaNInf(t *testing.T) {
	for _, v := range []string{"NaN", "+Inf", "-Inf", "inf", "1e999"} {
		in := "BenchmarkDecide/rules=1000-2  10  " + v + " ns/op\n"
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

// FuzzParse checks that whatever Parse accepts, the report and the chart
// are written without a panic and in finite time.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"testdata/sample.txt", "testdata/skip.txt", "testdata/skip-verbose.txt"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("BenchmarkDecide/rules=1000-2  10  1e308 ns/op\nBenchmarkDecide/rules=1-2  10  1e-308 ns/op\n")
	f.Add("BenchmarkCasbinCached/rules=5-2  1  3 ns/op  7 keys\nBenchmarkDecideCachedKeys/rules=5-2  1  0 ns/op\n")
	f.Fuzz(func(t *testing.T, in string) {
		o, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		Markdown(io.Discard, o, Info{SVG: "x.svg"})
		_ = SVG(io.Discard, o, "fuzz")
	})
}

// TestParseMalformedLines checks that a benchmark line that cannot be read
// is an error rather than a number silently missing from the report.
func TestParseMalformedLines(t *testing.T) {
	for _, line := range []string{
		"BenchmarkDecide/rules=1000-2  100  12.5 ns/op  0",           // odd: a value without its unit
		"BenchmarkDecide/rules=1000-2  100  12.5",                    // odd, no unit
		"BenchmarkDecide/rules=1000-2  100",                          // no values
		"BenchmarkDecide/rules=1000-2  many  12.5 ns/op",             // count not a number
		"BenchmarkDecide/rules=1000-2  0  12.5 ns/op",                // no iterations
		"BenchmarkDecide/rules=1000-2  100  12.5 ns/op  x allocs/op", // bad value
	} {
		if o, err := Parse(strings.NewReader("pkg: p\n" + line + "\n")); err == nil {
			t.Errorf("%q was accepted: %+v", line, o.Results)
		} else if !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: error %v does not name the line", line, err)
		}
	}
	// A name alone (-v, or before a failure or skip) is not an error.
	if o, err := Parse(strings.NewReader("BenchmarkDecide/rules=1000\nBenchmarkDecide/rules=1000-2\t  \n")); err != nil || len(o.Results) != 0 {
		t.Errorf("%+v %v", o, err)
	}
}

// TestReportMemoryFloor: the memory floor gets its own table, one row per
// buffer size in the order run, each the median of its runs; a report
// without it has no such section.
func TestReportMemoryFloor(t *testing.T) {
	o := parseFile(t, "testdata/sample.txt")
	var md bytes.Buffer
	Markdown(&md, o, Info{})
	if strings.Contains(md.String(), "memory floor") {
		t.Errorf("a report without BenchmarkMemoryFloor has its section:\n%s", md.String())
	}
	o.Merge(parseFile(t, "testdata/floor.txt"))
	md.Reset()
	Markdown(&md, o, Info{})
	s := md.String()
	want := "| buffer | one dependent read |\n|---:|---:|\n| 1 MB | 21.0 ns |\n| 4 MB | 45.0 ns |\n| 16 MB | 160 ns |\n| 64 MB | 170 ns |\n"
	if !strings.Contains(s, "## The machine's memory floor") || !strings.Contains(s, want) {
		t.Errorf("report lacks the memory floor table %q:\n%s", want, s)
	}
}

// TestParseInlineFailure reads plain (non -v) output of a benchmark that
// fails after its first run: go test prints its name and "--- FAIL: ..."
// on one line (found in review: the line was read as a result, and the
// whole report failed with "bad iteration count").
func TestParseInlineFailure(t *testing.T) {
	in := "BenchmarkDecide/rules=1000-2 \t 1000 \t 50.0 ns/op\n" +
		"BenchmarkHTTP-2   \t--- FAIL: BenchmarkHTTP-2\n" +
		"    http_test.go:80: server answered 500\n" +
		"BenchmarkCasbinEnforce/rules=1000000-2 \t--- SKIP: BenchmarkCasbinEnforce/rules=1000000-2\n" +
		"    fixtures_test.go:360: too slow: skipped\n" +
		"FAIL\n"
	o, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Results) != 1 || o.Results[0].Bench != "Decide" {
		t.Errorf("results: %+v", o.Results)
	}
	if len(o.Failures) != 1 || o.Failures[0] != (Note{"BenchmarkHTTP", "server answered 500"}) {
		t.Errorf("failures: %+v", o.Failures)
	}
	if len(o.Skips) != 1 || o.Skips[0] != (Note{"BenchmarkCasbinEnforce/rules=1000000", "too slow: skipped"}) {
		t.Errorf("skips: %+v", o.Skips)
	}
}
