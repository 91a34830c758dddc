// Command report runs Gatehouse's comparison benchmarks (package benchmarks,
// and the nested OPA module benchmarks/opa when it is present), then writes
// a Markdown report with the ratios measured in the same run and an SVG chart
// of latency against rule count.
//
// Run it from the repository:
//
//	go run ./benchmarks/cmd/report -sizes 1k,10k,100k,1m -benchtime 1s \
//	    -out benchmarks/RESULTS.md -svg benchmarks/latency.svg
//
// Flags:
//
//	-sizes      rule counts to benchmark (sets GATEHOUSE_BENCH_SIZES); default 1k,10k,100k,1m
//	-benchtime  go test -benchtime (default 1s; 1x for a quick look)
//	-count      go test -count (default 1): runs of each benchmark; the report
//	            shows the median run of each (by ns/op)
//	-bench      go test -bench pattern (default .: the benchmarks over data, then
//	            the middleware and HTTP ones and the memory floor in a second
//	            process, then OPA's)
//	-opa        run benchmarks/opa too when it exists (default true)
//	-out        the Markdown report (default: standard output)
//	-svg        the chart (default benchmarks/latency.svg; "" for none)
//	-raw        also save the raw go test output there
//	-input      read saved go test output (comma-separated files) instead of running
//	-timeout    go test -timeout (default 60m)
//
// The go test output is echoed to standard error as it runs. The command
// exits with status 1 when a benchmark failed, after writing the report.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-authz/gatehouse/benchmarks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run() error {
	sizes := flag.String("sizes", "1k,10k,100k,1m", "rule counts to benchmark, comma-separated (k, m suffixes)")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	count := flag.Int("count", 1, "go test -count: runs of each benchmark; the report shows the median run")
	bench := flag.String("bench", ".", "go test -bench pattern")
	opa := flag.Bool("opa", true, "also run the OPA module (benchmarks/opa) when present")
	out := flag.String("out", "", "Markdown report path (default: standard output)")
	svgPath := flag.String("svg", "benchmarks/latency.svg", `SVG chart path ("" for none)`)
	raw := flag.String("raw", "", "also save the raw go test output to this path")
	input := flag.String("input", "", "parse these saved go test outputs (comma-separated) instead of running")
	timeout := flag.String("timeout", "60m", "go test -timeout")
	flag.Parse()

	ns, err := benchmarks.ParseSizes(*sizes)
	if err != nil {
		return err
	}
	sizeList := make([]string, len(ns))
	for i, n := range ns {
		sizeList[i] = strconv.Itoa(n)
	}
	info := Info{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		CPU: cpuModel(), GoVersion: goVersion(), LoadAvg: loadAvg(),
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Benchtime: *benchtime, Count: *count,
		Sizes: strings.Join(sizeList, ", "),
	}

	var rawOut bytes.Buffer
	if *input != "" {
		info.Command = "parsed from saved go test output (" + *input + "); -benchtime and -sizes as given to the report"
		for _, f := range strings.Split(*input, ",") {
			b, err := os.ReadFile(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			rawOut.Write(b)
		}
	} else {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		env := append(os.Environ(), benchmarks.SizesEnv+"="+strings.Join(sizeList, ","))
		type job struct{ dir, bench string }
		// The middleware and HTTP benchmarks run in a process of their own,
		// so that the large heaps of the million-rule fixtures do not make
		// their garbage collection (and so their numbers) costlier; the
		// memory floor runs there too, its buffers away from those heaps.
		var jobs []job
		if *bench == "." {
			jobs = []job{{"benchmarks", sizedBenchmarks}, {"benchmarks", pathBenchmarks}}
		} else {
			jobs = []job{{"benchmarks", *bench}}
		}
		if opaDir := filepath.Join(root, "benchmarks", "opa"); *opa && exists(filepath.Join(opaDir, "go.mod")) {
			jobs = append(jobs, job{filepath.Join("benchmarks", "opa"), *bench})
		}
		var cmds []string
		for _, j := range jobs {
			rel, dir := j.dir, filepath.Join(root, j.dir)
			// -v: go test prints why a benchmark was skipped only in verbose mode.
			args := []string{"test", "-v", "-run", "^$", "-bench", j.bench, "-benchmem", "-benchtime", *benchtime, "-count", strconv.Itoa(max(1, *count)), "-timeout", *timeout, "."}
			cmds = append(cmds, fmt.Sprintf("(cd %s && %s=%s go %s)", rel, benchmarks.SizesEnv, strings.Join(sizeList, ","), strings.Join(quote(args), " ")))
			cmd := exec.CommandContext(context.Background(), "go", args...)
			cmd.Dir, cmd.Env = dir, env
			cmd.Stdout = io.MultiWriter(&rawOut, os.Stderr)
			cmd.Stderr = io.MultiWriter(&rawOut, os.Stderr)
			if err := cmd.Run(); err != nil {
				// Failed benchmarks are reported; a go test that could not
				// run at all (no output) is an error.
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					return err
				}
				fmt.Fprintf(os.Stderr, "report: go test in %s: %v\n", rel, err)
			}
		}
		info.Command = strings.Join(cmds, "; ")
	}
	if *raw != "" {
		if err := os.WriteFile(*raw, rawOut.Bytes(), 0o644); err != nil {
			return err
		}
	}

	o, err := Parse(&rawOut)
	if err != nil {
		return err
	}
	if len(o.Results) == 0 {
		return errors.New("no benchmark results")
	}
	if o.CPU != "" && info.CPU == "" {
		info.CPU = o.CPU
	}

	if *svgPath != "" {
		var svg bytes.Buffer
		if err := SVG(&svg, o, "Authorization latency against rule count ("+info.GOOS+"/"+info.GOARCH+", "+strconv.Itoa(info.NumCPU)+" CPUs)"); err != nil {
			return err
		}
		if err := os.WriteFile(*svgPath, svg.Bytes(), 0o644); err != nil {
			return err
		}
		info.SVG = *svgPath
		if *out != "" {
			if rel, err := filepath.Rel(filepath.Dir(*out), *svgPath); err == nil {
				info.SVG = filepath.ToSlash(rel)
			}
		}
	}

	var md bytes.Buffer
	Markdown(&md, o, info)
	if *out == "" {
		_, err = os.Stdout.Write(md.Bytes())
	} else {
		err = os.WriteFile(*out, md.Bytes(), 0o644)
	}
	if err != nil {
		return err
	}
	if len(o.Failures) > 0 {
		return fmt.Errorf("%d benchmark(s) failed", len(o.Failures))
	}
	return nil
}

// The benchmarks of package benchmarks, in two groups run by separate
// processes: those over generated data of each size, and the HTTP paths
// with the machine's memory floor.
const (
	sizedBenchmarks = "^Benchmark(Decide|TwoMap|CasbinEnforce|CasbinCached|DecideCachedKeys|DecideParallel|Scope|PolicyChange)$"
	pathBenchmarks  = "^Benchmark(Middleware|HTTP|MemoryFloor)$"
)

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the Gatehouse repository")
	}
	root := filepath.Dir(mod)
	if !exists(filepath.Join(root, "benchmarks")) {
		return "", fmt.Errorf("%s has no benchmarks directory", root)
	}
	return root, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// quote quotes the arguments a shell would need quoted.
func quote(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$*?[] '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

// cpuModel returns the CPU's model name from /proc/cpuinfo ("" elsewhere).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// goVersion returns the version of the go command that runs the benchmarks.
func goVersion() string {
	if b, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v
		}
	}
	return runtime.Version()
}

// loadAvg returns the 1, 5 and 15 minute load averages ("" when unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
