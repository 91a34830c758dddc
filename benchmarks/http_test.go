package benchmarks

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the loopback HTTP benchmark.
const (
	httpClients   = 8                // concurrent keep-alive clients
	httpChunk     = 500              // requests per route before switching to the other
	httpTimeLimit = 60 * time.Second // the whole run stops after this, done or not
)

// BenchmarkHTTP measures requests per second against an HTTP server on
// 127.0.0.1 with three routes:
//
//   - /bare: a tiny JSON handler, no authorization;
//   - /gatehouse: the same handler behind middleware.Require with a real
//     auth.Service and a cached entity-user token (the request is allowed);
//   - the example server (examples/server/api on SQLite): GET
//     /payables/{id} with an entity user's token and a role that may read
//     payables: the request is authenticated, decided, and read from the
//     database.
//
// httpClients keep-alive clients send b.N requests to each route, switching
// routes every httpChunk requests (rotating which goes first) so that all
// see the same machine load. The run is bounded by httpTimeLimit. One op is
// one request to each route. Metrics: the three req/s; gatehouse/bare, their
// ratio; authz-share, the time authorization adds to a request (the
// /gatehouse route's time per request less /bare's) as a share of the
// example server's time per request; and decision-p50-us and
// decision-p99-us, the wall time of the example server's decisions under
// this load, from its decision hook.
func BenchmarkHTTP(b *testing.B) {
	fx := middlewareFixture(b)
	sv := exampleServer(b)
	mux := http.NewServeMux()
	mux.Handle("GET /bare", fx.bare)
	mux.Handle("GET /gatehouse", fx.allow)
	mux.Handle("/", sv.srv.Handler())
	srv := httptest.NewServer(mux) // listens on 127.0.0.1 only
	defer srv.Close()
	tr := &http.Transport{MaxIdleConns: 2 * httpClients, MaxIdleConnsPerHost: 2 * httpClients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	type route struct{ url, token string }
	routes := []route{
		{srv.URL + "/bare", fx.token},
		{srv.URL + "/gatehouse", fx.token},
		{srv.URL + sv.path, sv.token},
	}
	// Open the keep-alive connections and fill the token caches first.
	for _, rt := range routes {
		if _, _, err := load(client, rt.url, rt.token, 2*httpClients, time.Now().Add(httpTimeLimit)); err != nil {
			b.Fatal(err)
		}
	}
	sv.latency.reset()
	var done [3]int
	var spent [3]time.Duration
	deadline := time.Now().Add(httpTimeLimit)
	b.ReportAllocs()
	b.ResetTimer()
	for chunk, left := 0, b.N; left > 0 && time.Now().Before(deadline); chunk++ {
		n := min(left, httpChunk)
		// Rotate which route goes first, so that none always runs right
		// after another's garbage or on a warmer cache.
		for j := range routes {
			i := (j + chunk) % len(routes)
			k, d, err := load(client, routes[i].url, routes[i].token, n, deadline)
			if err != nil {
				b.Fatal(err)
			}
			done[i] += k
			spent[i] += d
		}
		left -= n
	}
	b.StopTimer()
	if done[0] < b.N || done[1] < b.N || done[2] < b.N {
		b.Logf("stopped at the %v bound: %v of %d requests", httpTimeLimit, done, b.N)
	}
	var rps [3]float64
	for i := range rps {
		if spent[i] > 0 {
			rps[i] = float64(done[i]) / spent[i].Seconds()
		}
	}
	b.ReportMetric(rps[0], "bare-req/s")
	b.ReportMetric(rps[1], "gatehouse-req/s")
	b.ReportMetric(rps[2], "server-req/s")
	if rps[0] > 0 && rps[1] > 0 && rps[2] > 0 {
		b.ReportMetric(rps[1]/rps[0], "gatehouse/bare")
		b.ReportMetric((1/rps[1]-1/rps[0])*rps[2], "authz-share")
	}
	b.ReportMetric(float64(sv.latency.quantile(0.5).Nanoseconds())/1e3, "decision-p50-us")
	b.ReportMetric(float64(sv.latency.quantile(0.99).Nanoseconds())/1e3, "decision-p99-us")
}

// load sends n GET requests to url from httpClients goroutines sharing
// client, stopping early at deadline. It returns how many were answered and
// how long that took; any answer but 200 is an error.
func load(client *http.Client, url, token string, n int, deadline time.Time) (int, time.Duration, error) {
	var next, ok atomic.Int64
	var once sync.Once
	var firstErr error
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	var wg sync.WaitGroup
	start := time.Now()
	for range min(httpClients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				fail(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			for next.Add(1) <= int64(n) && time.Now().Before(deadline) {
				resp, err := client.Do(req)
				if err != nil {
					fail(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("GET %s: %s", url, resp.Status))
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), time.Since(start), firstErr
}
