package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/throttle"
)

// metrics are the server's Prometheus series. Labels take fixed values
// only (handler names, grant types, results), never client input, so the
// series count stays bounded.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	issued      *prometheus.CounterVec
	introspects *prometheus.CounterVec
	revoked     *prometheus.CounterVec
	logins      *prometheus.CounterVec
	backoffs    *prometheus.CounterVec
	// throttleFallbacks counts calls to the shared login throttle (Redis)
	// that failed and were answered by this node's memory, by scope.
	throttleFallbacks *prometheus.CounterVec
	// fanoutErrors counts revocation hints that could not be published
	// to the other nodes (Config.Fanout).
	fanoutErrors prometheus.Counter
	// grants counts code and refresh-token redemptions by result: ok,
	// unknown, refused (wrong client, redirect or verifier), expired, and
	// reused (a reuse that revoked a family: worth an alert).
	grants *prometheus.CounterVec
}

// loginResults are the values of latch_login_attempts_total's result label.
var loginResults = []string{"success", "bad_credentials", "throttled", "csrf", "invalid", "busy"}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total", Help: "HTTP requests by handler and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latch_http_request_duration_seconds", Help: "HTTP request latency by handler.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"handler"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_tokens_issued_total", Help: "Access tokens issued by grant type and format.",
		}, []string{"grant_type", "format"}),
		introspects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_tokens_introspected_total", Help: "Introspections by token format and result (active, inactive).",
		}, []string{"format", "result"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_tokens_revoked_total", Help: "Revocation requests by token format and result.",
		}, []string{"format", "result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_login_attempts_total",
			Help: "Password logins (POST /login and the password grant) by result: success, bad_credentials, throttled (refused during a back-off), csrf, invalid (empty fields), busy (no argon2 slot).",
		}, []string{"result"}),
		backoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_login_backoffs_total", Help: "Login back-offs started or lengthened, by scope (account, address).",
		}, []string{"scope"}),
		throttleFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_login_throttle_fallbacks_total",
			Help: "Calls to the shared login throttle (Redis) that failed and were answered by this node's in-memory throttle instead, by scope (account, address).",
		}, []string{"scope"}),
		fanoutErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_revocation_fanout_errors_total",
			Help: "Revocation hints that could not be published to the other nodes (Redis pub/sub); they learn of the revocations at their next poll of the store.",
		}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_grants_total", Help: "Authorization code and refresh token redemptions by grant and result (ok, unknown, refused, expired, reused).",
		}, []string{"grant_type", "result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.issued, m.introspects, m.revoked, m.logins, m.backoffs, m.throttleFallbacks, m.fanoutErrors, m.grants)
	for _, r := range loginResults {
		m.logins.WithLabelValues(r)
	}
	for _, sc := range []string{"account", "address"} {
		m.backoffs.WithLabelValues(sc)
		m.throttleFallbacks.WithLabelValues(sc)
	}
	// Process and runtime series; registering twice (tests reuse a registry)
	// is not an error worth failing over.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(handler string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(handler, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(handler).Observe(d.Seconds())
}

func (m *metrics) login(result string) { m.logins.WithLabelValues(result).Inc() }

func (m *metrics) backoff(scope string) { m.backoffs.WithLabelValues(scope).Inc() }

// throttled registers the gauge of keys in a login back-off now, by scope.
// It counts this node's memory only: with a shared throttle (Redis) that
// holds just the failures counted during an outage of it, and counting
// the keys in Redis on every scrape would cost a scan.
func (m *metrics) throttled(account, addr *throttle.Memory, now func() time.Time) {
	for scope, t := range map[string]*throttle.Memory{"account": account, "address": addr} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latch_login_backing_off", Help: "Accounts and client addresses in a login back-off now, by scope.",
			ConstLabels: prometheus.Labels{"scope": scope},
		}, func() float64 { return float64(t.BackingOff(now())) }))
	}
}

// tokenCache registers the token cache's series.
func (m *metrics) tokenCache(c *authority.TokenCache) {
	const name, help = "latch_token_cache_lookups_total", "Lookups of opaque access tokens in the in-memory token cache, by result (hit, miss)."
	for result, n := range map[string]func() uint64{
		"hit":  func() uint64 { h, _ := c.Lookups(); return h },
		"miss": func() uint64 { _, m := c.Lookups(); return m },
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: name, Help: help, ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(n()) }))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_token_cache_entries", Help: "Opaque access tokens held in the in-memory token cache.",
	}, func() float64 { return float64(c.Len()) }))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
