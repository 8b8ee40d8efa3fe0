// Command choosing measures, on this machine, the numbers docs/choosing.md
// compares the mechanisms by, and prints them as the doc's tables. Run it
// from the repository root:
//
//	go run ./tools/choosing                 # about two minutes on 2 cores
//	go run ./tools/choosing -benchtime 500x # quicker, noisier
//
// It reuses the repository's benchmarks (BENCHMARKS.md) for the in-process
// costs, and runs a real `latch serve --dev` on loopback for what only the
// wire shows: the tokens' sizes and the round trip of an introspection.
// Every step is bounded; a benchmark that no longer exists is reported as
// n/a rather than failing the run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	benchtime := flag.String("benchtime", "2000x", "go test -benchtime for the in-process benchmarks")
	n := flag.Int("n", 1000, "introspection round trips to time over loopback")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, *benchtime, *n); err != nil {
		fmt.Fprintln(os.Stderr, "choosing:", err)
		os.Exit(1)
	}
}

// selection is one `go test -bench` run.
type selection struct {
	pkg, re, benchtime string
}

func run(ctx context.Context, benchtime string, n int) error {
	fmt.Printf("machine: %s, %d CPUs, %s, load average %s, %s\n\n", runtime.GOARCH, runtime.NumCPU(), cpuModel(), loadAvg(), time.Now().UTC().Format(time.RFC3339))
	ns := map[string]float64{}
	for _, s := range []selection{
		// The verify and gateway benchmarks are microseconds or less: a
		// second each is enough, and a fixed count too few for a stable
		// figure.
		{"./verify/", `^Benchmark(Verify_Cold|Verify_CacheHit|Denylist_IsRevoked)$`, "1s"},
		{"./gateway/", `^BenchmarkGateway_CacheHit$`, "1s"},
		{"./server/", `^Benchmark(Introspect_Opaque|Introspect_Opaque_TokenCache|Introspect_JWT|Session_Lookup|Feed_RevokeToLongPollAnswer)$`, benchtime},
		{"./bff/", `^BenchmarkProxy_(SessionHit|Direct)$`, benchtime},
	} {
		got, err := bench(ctx, s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "choosing: %s: %v\n", s.pkg, err)
		}
		for k, v := range got {
			ns[k] = v
		}
	}
	w, err := wire(ctx, n)
	if err != nil {
		return err
	}
	feed, err := feedPercentiles(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "choosing: revocation feed test: %v\n", err)
		feed = "n/a"
	}

	fmt.Println("## Per-request cost at the resource server")
	fmt.Println()
	fmt.Println("| mechanism | what the resource server does per request | measured | source |")
	fmt.Println("|---|---|---:|---|")
	row := func(mech, what, name, src string) {
		fmt.Printf("| %s | %s | %s | `%s` |\n", mech, what, us(ns, name), src)
	}
	row("JWT, local verify", "signature + claims, first sight of the token (ES256)", "Verify_Cold/ES256/verify", "BenchmarkVerify_Cold/ES256/verify ./verify/")
	row("JWT, local verify", "the same token again (verified-token cache)", "Verify_CacheHit", "BenchmarkVerify_CacheHit ./verify/")
	row("JWT + revocation feed", "denylist lookup added to each verify", "Denylist_IsRevoked", "BenchmarkDenylist_IsRevoked ./verify/")
	fmt.Printf("| opaque, introspection | an HTTP round trip to latch (loopback, serial; p50 / p99) | %s / %s | `tools/choosing` (latch serve --dev) |\n", dur(w.introP50), dur(w.introP99))
	fmt.Printf("| (baseline) | an HTTP round trip to latch's metadata (p50) | %s | `tools/choosing` |\n", dur(w.baseP50))
	row("opaque, introspection", "latch's own work per introspection (token cache on)", "Introspect_Opaque_TokenCache", "BenchmarkIntrospect_Opaque_TokenCache ./server/")
	row("opaque, introspection", "latch's own work, token cache off", "Introspect_Opaque", "BenchmarkIntrospect_Opaque ./server/")
	fmt.Printf("| phantom token (gateway) | what the gateway adds on a cache hit, minus a plain reverse proxy (memory transport) | %s | `BenchmarkGateway_CacheHit ./gateway/` |\n",
		diff(ns, "Gateway_CacheHit/transport=memory/proxy=gateway", "Gateway_CacheHit/transport=memory/proxy=direct"))
	row("session cookie (latch login session)", "cookie → SHA-256 → session and user read", "Session_Lookup", "BenchmarkSession_Lookup ./server/")
	fmt.Printf("| BFF | its /api/* proxy on a session hit, minus a plain reverse proxy | %s | `BenchmarkProxy_SessionHit − BenchmarkProxy_Direct ./bff/` |\n", diff(ns, "Proxy_SessionHit/store=sqlite/serial", "Proxy_Direct/serial"))
	fmt.Println()
	fmt.Println("## Revocation delay")
	fmt.Println()
	fmt.Println("| path | delay | source |")
	fmt.Println("|---|---:|---|")
	fmt.Printf("| revoke → a waiting feed long-poll answers (in process, one fsynced write; mean) | %s | `BenchmarkFeed_RevokeToLongPollAnswer ./server/` |\n", us(ns, "Feed_RevokeToLongPollAnswer"))
	fmt.Printf("| revoke at latch serve → a `verify` follower refuses the JWT (200 trials, loopback) | %s | `go test ./cmd/latch -run TestFeed_E2E_RevocationReachesVerifier -v` |\n", feed)
	fmt.Println("| JWT without the feed | the token's lifetime: `--access-token-ttl` (10m by default) | configuration |")
	fmt.Println("| gateway without the feed | `--cache-ttl` (30s by default) | configuration |")
	fmt.Println("| opaque introspection, latch session, BFF session | the next request | by construction |")
	fmt.Println()
	fmt.Println("## Token size on the wire (`Authorization: Bearer` value, from latch serve --dev)")
	fmt.Println()
	fmt.Println("| token | bytes |")
	fmt.Println("|---|---:|")
	fmt.Printf("| opaque access token | %d |\n", w.opaqueLen)
	fmt.Printf("| JWT access token, ES256 (dev client, one audience, scope read) | %d |\n", w.jwtLen)
	fmt.Printf("| session cookie value (256 random bits, base64url; latch's login session and examples/webapp) | %d |\n", 43)
	return nil
}

var feedLine = regexp.MustCompile(`p50 (\S+)\s+p90 (\S+)\s+p99 (\S+)`)

// feedPercentiles runs the end-to-end revocation test, which logs the
// percentiles of revoke-to-refusal.
func feedPercentiles(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "test", "./cmd/latch", "-run", "^TestFeed_E2E_RevocationReachesVerifier$", "-v", "-count=1").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, tail(string(out)))
	}
	m := feedLine.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("no percentiles in its output:\n%s", tail(string(out)))
	}
	round := func(v string) string {
		if d, err := time.ParseDuration(v); err == nil {
			return dur(d)
		}
		return v
	}
	return fmt.Sprintf("p50 %s, p99 %s", round(m[1]), round(m[3])), nil
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// bench runs one selection and returns ns/op by benchmark name (without
// "Benchmark" and the -CPU suffix).
func bench(ctx context.Context, s selection) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", s.re, "-benchtime", s.benchtime, "-count", "1", s.pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := map[string]float64{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			res[m[1]] = v
		}
	}
	if err != nil {
		return res, fmt.Errorf("go test %s: %v\n%s", s.pkg, err, tail(out.String()))
	}
	return res, nil
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

func us(ns map[string]float64, name string) string {
	v, ok := ns[name]
	if !ok {
		return "n/a"
	}
	return dur(time.Duration(v))
}

func diff(ns map[string]float64, a, b string) string {
	va, ok1 := ns[a]
	vb, ok2 := ns[b]
	if !ok1 || !ok2 {
		return "n/a"
	}
	if va < vb {
		// The difference is below what this run can tell apart.
		return fmt.Sprintf("≈ 0 (%s vs %s)", dur(time.Duration(va)), dur(time.Duration(vb)))
	}
	return "+" + dur(time.Duration(va-vb))
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
}

// wireNumbers are what a real server shows.
type wireNumbers struct {
	opaqueLen, jwtLen           int
	introP50, introP99, baseP50 time.Duration
}

// wire runs latch serve --dev in a temporary directory, issues a JWT and
// an opaque token, and times n introspections and n metadata GETs.
func wire(ctx context.Context, n int) (*wireNumbers, error) {
	tmp, err := os.MkdirTemp("", "latch-choosing-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "latch")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/latch").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build latch (run from the repository root): %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	srv := exec.CommandContext(ctx, bin, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data,
		"--log-format", "json", "--log-level", "warn", "--introspection-rate", "1000000")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
	}()
	issuer, secret, err := devServer(stdout)
	if err != nil {
		return nil, fmt.Errorf("latch serve --dev: %v\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	out, err := exec.CommandContext(ctx, bin, "client", "create", "--data-dir", data, "--json",
		"--format", "opaque", "--audience", "api", "--scope", "read").Output()
	if err != nil {
		return nil, fmt.Errorf("client create: %v", err)
	}
	var oc struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &oc); err != nil {
		return nil, err
	}
	jwt, err := token(issuer, "dev", secret, url.Values{"scope": {"read"}, "audience": {"api"}})
	if err != nil {
		return nil, err
	}
	opaque, err := token(issuer, oc.ID, oc.Secret, nil)
	if err != nil {
		return nil, err
	}
	w := &wireNumbers{opaqueLen: len(opaque), jwtLen: len(jwt)}
	hc := &http.Client{Timeout: 10 * time.Second}
	time1 := func(do func() error) ([]time.Duration, error) {
		ds := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if err := do(); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds, nil
	}
	intro, err := time1(func() error {
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {opaque}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("dev", secret)
		return call(hc, req, `"active":true`)
	})
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	base, err := time1(func() error {
		req, _ := http.NewRequest(http.MethodGet, issuer+"/.well-known/oauth-authorization-server", nil)
		return call(hc, req, `"issuer"`)
	})
	if err != nil {
		return nil, err
	}
	w.introP50, w.introP99, w.baseP50 = intro[n/2], intro[n*99/100], base[n/2]
	return w, nil
}

// devServer reads serve --dev's stdout for the issuer and the dev secret.
func devServer(r io.Reader) (issuer, secret string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && f[0] == "latch" && f[1] == "dev" && f[2] == "server":
			issuer = f[4]
		case len(f) == 2 && f[0] == "client_secret:":
			secret = f[1]
		}
		if issuer != "" && secret != "" {
			return issuer, secret, nil
		}
	}
	return "", "", errors.New("no issuer and dev client secret on its stdout")
}

func token(issuer, id, secret string, form url.Values) (string, error) {
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token for %s: %d %s", id, resp.StatusCode, b)
	}
	return tr.AccessToken, nil
}

func call(hc *http.Client, req *http.Request, want string) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "cpu unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
