package benchmarks

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Environment variables read by the benchmarks.
const (
	// SizesEnv lists the rule counts to benchmark, comma-separated, e.g.
	// "1000,10000". When set it is used as given (1,000,000 included).
	SizesEnv = "GATEHOUSE_BENCH_SIZES"
	// FullEnv, set to "1", adds 1,000,000 rules to the default sizes.
	FullEnv = "GATEHOUSE_BENCH_FULL"
)

// DefaultSizes are the rule counts benchmarked when SizesEnv is not set.
// 1,000,000 is left out unless FullEnv is "1": building Casbin's enforcer at
// that size takes tens of seconds and a gigabyte, too much for a CI smoke run.
var DefaultSizes = []int{1_000, 10_000, 100_000}

// FullSize is the largest size, added by FullEnv.
const FullSize = 1_000_000

// Sizes returns the rule counts to benchmark, from the environment (see
// SizesEnv and FullEnv).
func Sizes() ([]int, error) {
	if s := strings.TrimSpace(os.Getenv(SizesEnv)); s != "" {
		return ParseSizes(s)
	}
	sizes := append([]int(nil), DefaultSizes...)
	if os.Getenv(FullEnv) == "1" {
		sizes = append(sizes, FullSize)
	}
	return sizes, nil
}

// ParseSizes parses a comma-separated list of positive rule counts. A count
// may end in k or m (thousands, millions): "1k,10k,100k,1m".
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if f == "" {
			continue
		}
		mul := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mul, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "m"):
			mul, f = 1_000_000, strings.TrimSuffix(f, "m")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("benchmarks: bad size %q in %q", f, s)
		}
		out = append(out, n*mul)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("benchmarks: no sizes in %q", s)
	}
	return out, nil
}
