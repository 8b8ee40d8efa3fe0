// Command loadgen is latch's HTTP load generator. It drives one endpoint of a
// running `latch serve` (or its own no-op server, for a baseline) from -c
// concurrent keep-alive connections for -d, and prints one JSON line:
//
//	{"mode":"introspect","c":16,"duration_s":10.0,"requests":...,"errors":0,
//	 "rps":...,"p50_us":...,"p90_us":...,"p99_us":...,"max_us":...}
//
// Modes:
//
//	-mode token       POST grant_type=client_credentials to /oauth2/token
//	-mode introspect  POST token=... to /oauth2/introspect (-token or -token-file)
//	-mode noop        POST a body of the same size to -url (a -serve-noop server)
//	-serve-noop ADDR  run a no-op net/http server on ADDR (port 0: any free
//	                  port; the address is printed as {"noop_listening":ADDR})
//
// Every answer that is not 200 is an error, and so is a 200 that does not
// say what it should (introspection: "active":true; token: an access_token
// in the -format asked for): an inactive token would otherwise be measured as
// a fast success. Errors are counted by kind; a run with errors says so in
// its JSON ("ok":false) and exits with status 2.
//
// It is a test tool: it refuses a non-loopback URL unless -allow-remote,
// and every run is bounded by -d and -n.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	url          string
	mode         string
	c            int
	d            time.Duration
	warmup       time.Duration
	n            int64
	clientID     string
	clientSecret string
	token        string
	tokenFile    string
	scope        string
	format       string
	label        string
	timeout      time.Duration
	allowRemote  bool
}

func main() {
	var o options
	var serveNoop string
	var serveFor time.Duration
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "server URL; without a path, the mode's endpoint (/oauth2/token, /oauth2/introspect) is appended")
	flag.StringVar(&o.mode, "mode", "introspect", "token, introspect or noop")
	flag.IntVar(&o.c, "c", 16, "concurrent connections (one goroutine each)")
	flag.DurationVar(&o.d, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", 0, "unmeasured warm-up before -d")
	flag.Int64Var(&o.n, "n", 5_000_000, "maximum number of requests, warm-up included (the run stops at -d or -n)")
	flag.StringVar(&o.clientID, "client-id", "", "client id (client_secret_basic)")
	flag.StringVar(&o.clientSecret, "client-secret", "", "client secret")
	flag.StringVar(&o.token, "token", "", "introspect: the token to introspect")
	flag.StringVar(&o.tokenFile, "token-file", "", "introspect: a file of tokens, one a line; connections take them round-robin")
	flag.StringVar(&o.scope, "scope", "read", "token: the scope to request")
	flag.StringVar(&o.format, "format", "", "token: the access-token format the server must issue (jwt or opaque), checked on every answer; introspect: a label; recorded in the output")
	flag.StringVar(&o.label, "label", "", "free text copied into the output")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback -url")
	flag.StringVar(&serveNoop, "serve-noop", "", "run a no-op HTTP server on this address instead of generating load")
	flag.DurationVar(&serveFor, "serve-for", 30*time.Minute, "-serve-noop: stop after this long even if not signalled")
	flag.Parse()

	if serveNoop != "" {
		if err := runNoop(serveNoop, serveFor); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d of %d requests FAILED: %v\n", res.Errors, res.Requests, res.ErrorKinds)
		os.Exit(2)
	}
}

// result is the JSON line a run prints.
type result struct {
	Mode       string           `json:"mode"`
	Format     string           `json:"format,omitempty"`
	Label      string           `json:"label,omitempty"`
	URL        string           `json:"url"`
	C          int              `json:"c"`
	Duration   float64          `json:"duration_s"`
	Requests   int64            `json:"requests"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	OK         bool             `json:"ok"`
	StoppedByN bool             `json:"stopped_by_n,omitempty"`
	RPS        float64          `json:"rps"`
	MeanUS     float64          `json:"mean_us"`
	P50US      float64          `json:"p50_us"`
	P90US      float64          `json:"p90_us"`
	P99US      float64          `json:"p99_us"`
	MaxUS      float64          `json:"max_us"`
}

// worker state: its latencies (ns) and error counts, merged at the end.
type worker struct {
	lat    []int64
	errs   map[string]int64
	nreq   int64
	finish time.Time
}

func run(o options) (*result, error) {
	if o.c < 1 || o.c > 4096 {
		return nil, fmt.Errorf("-c %d: want 1..4096", o.c)
	}
	if o.d <= 0 || o.d > time.Hour || o.warmup < 0 {
		return nil, fmt.Errorf("-d %v: want a positive duration up to 1h (and -warmup >= 0)", o.d)
	}
	if o.n < 1 {
		return nil, fmt.Errorf("-n %d: the run must be bounded by a positive request count", o.n)
	}
	u, err := url.Parse(o.url)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url %q: want http(s)://host:port[/path]", o.url)
	}
	if !o.allowRemote && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("-url %q is not loopback; pass -allow-remote to load another host", o.url)
	}
	if u.Path == "" || u.Path == "/" {
		switch o.mode {
		case "token":
			u.Path = "/oauth2/token"
		case "introspect":
			u.Path = "/oauth2/introspect"
		}
	}

	// Pre-encode every body once; requests only wrap them in a reader.
	var bodies [][]byte
	var check func(b []byte) string // "" if the 200 answer is right, else an error kind
	switch o.mode {
	case "token":
		bodies = [][]byte{[]byte(url.Values{"grant_type": {"client_credentials"}, "scope": {o.scope}}.Encode())}
		check = tokenCheck(o.format)
	case "introspect":
		toks, err := tokens(o)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			bodies = append(bodies, []byte(url.Values{"token": {t}}.Encode()))
		}
		active := []byte(`"active":true`)
		check = func(b []byte) string {
			if !bytes.Contains(b, active) {
				return "inactive"
			}
			return ""
		}
	case "noop":
		// The same shape as an introspection request, so the HTTP work is
		// comparable: a form body of a token's size and Basic credentials.
		bodies = [][]byte{[]byte("token=" + strings.Repeat("x", 55))}
		check = func([]byte) string { return "" }
	default:
		return nil, fmt.Errorf("-mode %q: want token, introspect or noop", o.mode)
	}
	if o.mode != "noop" && o.clientID == "" {
		return nil, errors.New("-client-id (and -client-secret) are required")
	}
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	if o.clientID != "" {
		// RFC 6749 §2.3.1: form-urlencode both before joining.
		cred := url.QueryEscape(o.clientID) + ":" + url.QueryEscape(o.clientSecret)
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.c,
		MaxIdleConnsPerHost: o.c,
		MaxConnsPerHost:     o.c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := u.String()

	// One request before the clock starts: a misconfigured run fails here
	// with the server's answer instead of producing a table of errors.
	if kind, body := do(client, target, header, bodies[0], check, new(bytes.Buffer)); kind != "" {
		return nil, fmt.Errorf("preflight %s %s: %s: %.300s", o.mode, target, kind, body)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.d)
	var started atomic.Int64
	var stoppedByN atomic.Bool
	workers := make([]*worker, o.c)
	perWorker := min(o.n/int64(o.c)+1, 1<<22)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{lat: make([]int64, 0, perWorker), errs: map[string]int64{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := header.Clone() // each connection's requests use their own map
			buf := new(bytes.Buffer)
			k := i
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if started.Add(1) > o.n {
					stoppedByN.Store(true)
					break
				}
				kind, _ := do(client, target, h, bodies[k%len(bodies)], check, buf)
				k += o.c
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				w.nreq++
				w.lat = append(w.lat, int64(t1.Sub(t0)))
				if kind != "" {
					w.errs[kind]++
				}
				w.finish = t1
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}

	res := &result{Mode: o.mode, Format: o.format, Label: o.label, URL: target, C: o.c,
		ErrorKinds: map[string]int64{}, StoppedByN: stoppedByN.Load()}
	var all []int64
	last := measureFrom
	for _, w := range workers {
		res.Requests += w.nreq
		all = append(all, w.lat...)
		for k, v := range w.errs {
			res.ErrorKinds[k] += v
			res.Errors += v
		}
		if w.finish.After(last) {
			last = w.finish
		}
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	res.OK = res.Errors == 0 && res.Requests > 0
	elapsed := last.Sub(measureFrom)
	if elapsed <= 0 || len(all) == 0 {
		return nil, errors.New("no request completed in the measured window")
	}
	res.Duration = round(elapsed.Seconds(), 3)
	res.RPS = round(float64(res.Requests)/elapsed.Seconds(), 1)
	slices.Sort(all)
	var sum float64
	for _, v := range all {
		sum += float64(v)
	}
	us := func(ns float64) float64 { return round(ns/1e3, 1) }
	res.MeanUS = us(sum / float64(len(all)))
	res.P50US = us(float64(quantile(all, 0.50)))
	res.P90US = us(float64(quantile(all, 0.90)))
	res.P99US = us(float64(quantile(all, 0.99)))
	res.MaxUS = us(float64(all[len(all)-1]))
	return res, nil
}

// do sends one request and returns "" or the kind of error, and the body.
func do(c *http.Client, target string, h http.Header, body []byte, check func([]byte) string, buf *bytes.Buffer) (string, []byte) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "request", nil
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout", nil
		}
		return "transport", []byte(err.Error())
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "read", nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("http_%d", resp.StatusCode), buf.Bytes()
	}
	if kind := check(buf.Bytes()); kind != "" {
		return kind, buf.Bytes()
	}
	return "", buf.Bytes()
}

// tokenCheck checks a token response: an access_token, in format when set.
func tokenCheck(format string) func([]byte) string {
	key := []byte(`"access_token":"`)
	return func(b []byte) string {
		i := bytes.Index(b, key)
		if i < 0 {
			return "no_access_token"
		}
		tok := b[i+len(key):]
		if j := bytes.IndexByte(tok, '"'); j >= 0 {
			tok = tok[:j]
		}
		switch format {
		case "opaque":
			if !bytes.HasPrefix(tok, []byte("lt_at_")) {
				return "wrong_format"
			}
		case "jwt":
			if bytes.Count(tok, []byte(".")) != 2 {
				return "wrong_format"
			}
		}
		return ""
	}
}

// tokens returns the tokens to introspect: -token, or -token-file's lines.
func tokens(o options) ([]string, error) {
	if (o.token == "") == (o.tokenFile == "") {
		return nil, errors.New("introspect needs exactly one of -token and -token-file")
	}
	if o.token != "" {
		return []string{o.token}, nil
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if t := strings.TrimSpace(line); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", o.tokenFile)
	}
	return out, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []int64, q float64) int64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runNoop serves a handler that reads the body and answers a small JSON
// 200, with the headers latch sets, on the same net/http stack and timeouts
// as `latch serve`: the ceiling any handler can reach on this machine.
func runNoop(addr string, lifetime time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-serve-noop %q: %w", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("-serve-noop %q: listen on a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte(`{"active":false}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hd := w.Header()
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Pragma", "no-cache")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	out, _ := json.Marshal(map[string]string{"noop_listening": ln.Addr().String()})
	fmt.Println(string(out))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return hs.Shutdown(sctx)
}
