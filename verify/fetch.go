package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// fetcher does the package's outbound HTTP: bounded in time and size, to
// URLs whose scheme has been checked.
type fetcher struct {
	client    *http.Client
	timeout   time.Duration
	maxBytes  int64
	allowHTTP bool
}

// do sends req and returns the body of a 200 answer, at most maxBytes.
func (f *fetcher) do(req *http.Request) (http.Header, []byte, error) {
	if err := checkScheme("URL", req.URL, f.allowHTTP); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(req.Context(), f.timeout)
	defer cancel()
	resp, err := f.client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("verify: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("verify: %s %s: read body: %w", req.Method, req.URL.Redacted(), err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, nil, fmt.Errorf("verify: %s %s: body exceeds %d bytes", req.Method, req.URL.Redacted(), f.maxBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &statusError{method: req.Method, url: req.URL.Redacted(), code: resp.StatusCode}
	}
	return resp.Header, body, nil
}

type statusError struct {
	method, url string
	code        int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("verify: %s %s: status %d", e.method, e.url, e.code)
}

func (f *fetcher) get(ctx context.Context, u string) (http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("verify: GET %q: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	return f.do(req)
}

// metadata is the part of RFC 8414 §2 / OIDC Discovery §3 this package reads.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	// OpaqueTokenKeysEndpoint is latch's own (TagKeys).
	OpaqueTokenKeysEndpoint string `json:"opaque_token_keys_endpoint"`
}

// discover fetches the issuer's metadata: RFC 8414 §3 first (the well-known
// suffix inserted between host and path), then OIDC Discovery §4 (appended
// to the issuer). The document's issuer must equal issuer exactly (RFC 8414
// §3.3, OIDC Discovery §4.3), or an attacker serving metadata elsewhere
// could name its own keys.
func (f *fetcher) discover(ctx context.Context, issuer string) (*metadata, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("verify: issuer %q: %w", issuer, err)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	rfc8414 := *u
	rfc8414.RawPath = ""
	rfc8414.Path = ""
	rfc8414Str := rfc8414.String() + "/.well-known/oauth-authorization-server" + path
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"

	var errs []error
	for _, where := range []string{rfc8414Str, oidc} {
		md, err := f.fetchMetadata(ctx, where, issuer)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("verify: discover %s: %w", issuer, errors.Join(errs...))
}

func (f *fetcher) fetchMetadata(ctx context.Context, where, issuer string) (*metadata, error) {
	_, body, err := f.get(ctx, where)
	if err != nil {
		return nil, err
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("verify: metadata at %s: %w", where, err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("verify: metadata at %s names issuer %q, want exactly %q (RFC 8414 §3.3)", where, md.Issuer, issuer)
	}
	return &md, nil
}

// checkEndpoint checks an endpoint URL taken from metadata or configuration.
func checkEndpoint(what, raw string, allowHTTP bool) error {
	if raw == "" {
		return fmt.Errorf("verify: %s is missing", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("verify: %s %q: %v", what, raw, err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("verify: %s %q must be an absolute URL without user info or fragment", what, raw)
	}
	return checkScheme(what, u, allowHTTP)
}
