// Command service is a service-to-service client: it gets access tokens
// from latch with the client_credentials grant, authenticating with
// private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9) instead of a
// shared secret. Only its public key is registered at latch; the private
// key never leaves the service, and each request carries a fresh
// single-use assertion (iss = sub = client_id, aud = the issuer, a jti and
// a one-minute exp), so an intercepted one cannot be replayed.
//
// It keeps the token until shortly before it expires, and with --call
// sends it to a resource server (examples/api, say).
//
//	go run ./examples/service keygen --out svc       # svc.key.jwk (private, 0600), svc.jwks.json (public)
//	latch client create --id svc --auth-method private_key_jwt --jwks-file svc.jwks.json --audience api --scope read
//	go run ./examples/service --issuer http://127.0.0.1:8080 --insecure-allow-http \
//	    --client-id svc --key svc.key.jwk --scope read --call http://127.0.0.1:9000/hello
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "keygen" {
		return keygen(args[1:], stdout)
	}
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "latch issuer URL")
	insecure := fs.Bool("insecure-allow-http", false, "allow an http issuer (local development only)")
	clientID := fs.String("client-id", "", "this service's client at latch (registered with --auth-method private_key_jwt)")
	keyFile := fs.String("key", "", "the private JWK file keygen wrote")
	scope := fs.String("scope", "", "scopes to request (space-separated); default: the client's")
	audience := fs.String("audience", "", "audience to request; default: the client's first")
	call := fs.String("call", "", "GET this URL with the access token and print the answer")
	printToken := fs.Bool("print-token", false, "print the access token itself (for debugging: it is a bearer credential)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clientID == "" || *keyFile == "" {
		return errors.New("--client-id and --key are required (see the package comment)")
	}
	if strings.HasPrefix(*issuer, "http://") && !*insecure {
		return errors.New("--issuer is http: pass --insecure-allow-http for local development only")
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	src, err := newTokenSource(ctx, strings.TrimRight(*issuer, "/"), *clientID, key, *scope, *audience)
	if err != nil {
		return err
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return err
	}
	out := map[string]any{"token_type": tok.Type, "expires_in": int(time.Until(tok.Expiry).Seconds()), "scope": tok.Scope}
	if *printToken {
		out["access_token"] = tok.Value
	}
	if *call != "" {
		status, body, err := get(ctx, *call, tok.Value)
		if err != nil {
			return err
		}
		out["call"] = map[string]any{"url": *call, "status": status, "body": body}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// keygen writes a new P-256 key pair: PREFIX.key.jwk (private, mode 0600)
// and PREFIX.jwks.json (the public JWK Set to register).
func keygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "service", "file name prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	kid := make([]byte, 12)
	rand.Read(kid)
	jwk := jose.JSONWebKey{Key: priv, KeyID: base64.RawURLEncoding.EncodeToString(kid), Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return err
	}
	pubJSON, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".key.jwk", privJSON, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".jwks.json", pubJSON, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s.key.jwk (private: keep it on the service) and %s.jwks.json (register it: latch client create --auth-method private_key_jwt --jwks-file %s.jwks.json)\n", *out, *out, *out)
	return nil
}

func loadKey(path string) (*jose.JSONWebKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%s: not a JWK: %w", path, err)
	}
	if k.IsPublic() {
		return nil, fmt.Errorf("%s is a public key; --key takes the private one", path)
	}
	return &k, nil
}

// Token is an access token and when to stop using it.
type Token struct {
	Value, Type, Scope string
	Expiry             time.Time
}

// tokenSource hands out one token until shortly before it expires, then
// gets a new one, so a busy service asks latch once per token lifetime.
type tokenSource struct {
	issuer, tokenEndpoint, clientID string
	signer                          jose.Signer
	scope, audience                 string

	mu  sync.Mutex
	tok *Token
}

func newTokenSource(ctx context.Context, issuer, clientID string, key *jose.JSONWebKey, scope, audience string) (*tokenSource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, err
	}
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if _, err := doJSON(req, &md); err != nil {
		return nil, fmt.Errorf("issuer metadata: %w", err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("issuer metadata names issuer %q, not %q (RFC 8414 §3.3)", md.Issuer, issuer)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID))
	if err != nil {
		return nil, err
	}
	return &tokenSource{issuer: issuer, tokenEndpoint: md.TokenEndpoint, clientID: clientID, signer: signer, scope: scope, audience: audience}, nil
}

// Token returns the cached token while it has more than 30s to live.
func (s *tokenSource) Token(ctx context.Context) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && time.Until(s.tok.Expiry) > 30*time.Second {
		return s.tok, nil
	}
	assertion, err := s.assertion()
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {s.clientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if s.scope != "" {
		form.Set("scope", s.scope)
	}
	if s.audience != "" {
		form.Set("audience", s.audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	start := time.Now()
	if _, err := doJSON(req, &tr); err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	s.tok = &Token{Value: tr.AccessToken, Type: tr.TokenType, Scope: tr.Scope, Expiry: start.Add(time.Duration(tr.ExpiresIn) * time.Second)}
	return s.tok, nil
}

// assertion is a new client assertion (RFC 7523 §3): latch wants aud to
// be exactly its issuer identifier, and remembers each jti until exp.
func (s *tokenSource) assertion() (string, error) {
	now := time.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := jwt.Claims{Issuer: s.clientID, Subject: s.clientID, Audience: jwt.Audience{s.issuer},
		ID: base64.RawURLEncoding.EncodeToString(jti), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	return jwt.Signed(s.signer).Claims(claims).Serialize()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func doJSON(req *http.Request, v any) (int, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.StatusCode, json.Unmarshal(body, v)
}

func get(ctx context.Context, u, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}
