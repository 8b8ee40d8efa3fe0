// Package hopbench puts two HTTP endpoints under the same closed-loop load
// and alternates between them in short rounds, so that a proxy and the
// plain proxy it is compared with share the machine's changing load. The
// benchmarks of the gateway and the BFF use it for their throughput ratio
// at a given concurrency (what `wrk -c16` measures, run in one process).
// It owns no server: the caller starts both endpoints and the upstream.
package hopbench

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Arm is one endpoint under load: GET URL with the header Prepare sets.
type Arm struct {
	Name    string
	URL     string
	Prepare func(*http.Request)
}

// Result holds, per arm, the requests measured, the wall time of the
// rounds that served them and the latency percentiles, and every request
// answered 200, warm-up included (Sent).
type Result struct {
	Requests [2]int
	Sent     [2]int
	// Ratios holds, per round, the second arm's throughput over the
	// first's in that round: neighbours in time, so the median of these
	// resists the bursts of other work on a shared machine better than
	// the ratio of the totals.
	Ratios   []float64
	Elapsed  [2]time.Duration
	P50, P99 [2]time.Duration
}

// MedianRatio returns the median of Ratios.
func (r Result) MedianRatio() float64 {
	if len(r.Ratios) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r.Ratios))
	return s[len(s)/2]
}

// Throughput returns arm i's requests per second.
func (r Result) Throughput(i int) float64 { return float64(r.Requests[i]) / r.Elapsed[i].Seconds() }

// Run sends n requests to each arm from c concurrent clients (each with
// its own keep-alive connection), in rounds of roundSize requests per arm,
// the arms taking turns and swapping which goes first every round. Every
// answer must be 200; anything else fails tb.
func Run(tb testing.TB, c, n, roundSize int, arms [2]Arm) Result {
	tb.Helper()
	clients := make([]*http.Client, c)
	for i := range clients {
		// One transport per client: one connection each, as wrk opens.
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	}
	defer func() {
		for _, cl := range clients {
			cl.CloseIdleConnections()
		}
	}()
	var res Result
	lat := [2][]time.Duration{make([]time.Duration, 0, n), make([]time.Duration, 0, n)}
	var failed atomic.Pointer[string]

	round := func(arm int, count int) time.Duration {
		a := arms[arm]
		var (
			next atomic.Int64
			wg   sync.WaitGroup
			mu   sync.Mutex
		)
		start := time.Now()
		for _, cl := range clients {
			wg.Go(func() {
				local := make([]time.Duration, 0, count/c+1)
				for next.Add(1) <= int64(count) {
					req, _ := http.NewRequest(http.MethodGet, a.URL, nil)
					if a.Prepare != nil {
						a.Prepare(req)
					}
					t0 := time.Now()
					resp, err := cl.Do(req)
					if err != nil {
						msg := a.Name + ": " + err.Error()
						failed.CompareAndSwap(nil, &msg)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(t0))
					if resp.StatusCode != http.StatusOK {
						msg := a.Name + ": status " + resp.Status
						failed.CompareAndSwap(nil, &msg)
						return
					}
				}
				mu.Lock()
				lat[arm] = append(lat[arm], local...)
				mu.Unlock()
			})
		}
		wg.Wait()
		d := time.Since(start)
		res.Elapsed[arm] += d
		res.Requests[arm] += count
		res.Sent[arm] += count
		return d
	}

	// Warm both arms: connections, caches.
	round(0, 2*c)
	round(1, 2*c)
	res = Result{Sent: res.Requests}
	lat[0], lat[1] = lat[0][:0], lat[1][:0]

	for done, r := 0, 0; done < n; r++ {
		k := min(roundSize, n-done)
		var d [2]time.Duration
		first := r % 2
		d[first] = round(first, k)
		d[1-first] = round(1-first, k)
		res.Ratios = append(res.Ratios, d[0].Seconds()/d[1].Seconds())
		done += k
		if p := failed.Load(); p != nil {
			tb.Fatal(*p)
		}
	}
	for i := range lat {
		slices.Sort(lat[i])
		if len(lat[i]) > 0 {
			res.P50[i] = lat[i][len(lat[i])/2]
			res.P99[i] = lat[i][len(lat[i])*99/100]
		}
	}
	return res
}

// Report records r on b: each arm's throughput and p50/p99, the second
// arm's throughput as a share of the first's (throughput-ratio: the median
// of the rounds'; total-ratio: of the totals), and the p50 it adds.
func Report(b *testing.B, r Result) {
	b.ReportMetric(r.Throughput(0), "base-req/s")
	b.ReportMetric(r.Throughput(1), "req/s")
	b.ReportMetric(r.MedianRatio(), "throughput-ratio")
	b.ReportMetric(r.Throughput(1)/r.Throughput(0), "total-ratio")
	b.ReportMetric(float64(r.P50[0].Microseconds()), "base-p50-µs")
	b.ReportMetric(float64(r.P50[1].Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.P99[0].Microseconds()), "base-p99-µs")
	b.ReportMetric(float64(r.P99[1].Microseconds()), "p99-µs")
	b.ReportMetric(float64((r.P50[1] - r.P50[0]).Microseconds()), "added-p50-µs")
}
