package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

func TestVerify_RoundTrip_DiscoveryJWKSAndClaims(t *testing.T) {
	for _, alg := range []latch.Algorithm{latch.ES256, latch.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			k := newKey(t, "k-"+string(alg), alg)
			is := newIssuer(t, k)
			c := newClock()
			v := mustNew(t, is.config(c))
			want := claimsAt(is, c)
			got, err := v.Verify(context.Background(), mustSign(t, k, "at+jwt", want))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != want.Subject || got.ID != want.ID || got.ClientID != want.ClientID || got.Scope != want.Scope || !got.Audience.Contains(testAudience) {
				t.Fatalf("claims %+v, want %+v", got.Claims, want)
			}
			if !got.HasScope("read") || !got.HasScope("write") || got.HasScope("rea") || got.HasScope("admin") || got.HasScope("") {
				t.Fatalf("HasScope wrong for scope %q", got.Scope)
			}
			if n := is.count("/.well-known/oauth-authorization-server"); n != 1 {
				t.Fatalf("RFC 8414 metadata fetched %d times, want 1", n)
			}
		})
	}
}

func TestNew_FallsBackToOIDCDiscovery(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	is.set(func(is *issuer) { is.no8414 = true })
	c := newClock()
	v := mustNew(t, is.config(c))
	if _, err := v.Verify(context.Background(), mustSign(t, k, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatal(err)
	}
	if is.count("/.well-known/openid-configuration") != 1 {
		t.Fatal("OIDC discovery was not used")
	}
}

func TestNew_IssuerWithPath_UsesRFC8414InsertedWellKnown(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	is.URL = is.srv.URL + "/tenant"
	c := newClock()
	mustNew(t, is.config(c))
	if n := is.count("/.well-known/oauth-authorization-server/tenant"); n != 1 {
		t.Fatalf("RFC 8414 §3.1 path fetched %d times, want 1", n)
	}
}

func TestNew_WrongIssuerInMetadata_IsRefused(t *testing.T) {
	for _, md := range []string{"https://evil.example", "URL/", "url-case"} {
		t.Run(md, func(t *testing.T) {
			is := newIssuer(t, newKey(t, "k1", latch.ES256))
			switch md {
			case "URL/":
				md = is.URL + "/"
			case "url-case":
				md = strings.ToUpper(is.URL[:4]) + is.URL[4:]
			}
			is.set(func(is *issuer) { is.mdIssuer = md })
			_, err := New(context.Background(), is.config(newClock()))
			if err == nil || !strings.Contains(err.Error(), "want exactly") {
				t.Fatalf("New with metadata issuer %q: %v, want refusal", md, err)
			}
			if is.jwksFetches.Load() != 0 {
				t.Fatal("the JWKS of a mismatched issuer was fetched")
			}
		})
	}
}

func TestNew_HTTPIssuerWithoutInsecureAllowHTTP_IsRefused(t *testing.T) {
	is := newIssuer(t, newKey(t, "k1", latch.ES256))
	cfg := is.config(newClock())
	cfg.InsecureAllowHTTP = false
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "InsecureAllowHTTP") {
		t.Fatalf("New: %v", err)
	}
	if is.countPrefix("/") != 0 {
		t.Fatal("an http issuer was contacted")
	}
}

func TestNew_IssuerDown_IsAnError(t *testing.T) {
	is := newIssuer(t, newKey(t, "k1", latch.ES256))
	is.set(func(is *issuer) { is.down = true })
	if _, err := New(context.Background(), is.config(newClock())); err == nil {
		t.Fatal("New succeeded with the issuer down")
	}
}

func TestNew_OversizedJWKS_IsRefused(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	is.publish(map[string]any{"kty": "EC", "padding": strings.Repeat("x", 5000)})
	cfg := is.config(newClock())
	cfg.MaxResponseBytes = 4096
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("New: %v", err)
	}
}

// TestKeySet_UnknownKid_OneSingleFlightFetch is security invariant 1's "an
// unknown kid (after one rate-limited JWKS refresh)": 1000 concurrent
// requests with a kid the verifier has not seen cause one fetch, which finds
// the new key; further unknown kids cause none until the interval passed.
func TestKeySet_UnknownKid_OneSingleFlightFetch(t *testing.T) {
	k1, k2 := newKey(t, "k1", latch.ES256), newKey(t, "k2", latch.ES256)
	is := newIssuer(t, k1)
	is.set(func(is *issuer) { is.cacheControl = "max-age=3600" }) // no scheduled refresh in this test
	c := newClock()
	cfg := is.config(c)
	cfg.UnknownKeyInterval = 10 * time.Minute
	cfg.DisableCache = true
	v := mustNew(t, cfg)
	if n := is.jwksFetches.Load(); n != 1 {
		t.Fatalf("%d fetches at New", n)
	}
	// New's fetch counts: the interval starts from it.
	c.Advance(10*time.Minute + time.Second)
	is.publish(k2.jwk())
	is.set(func(is *issuer) { is.jwksDelay = 50 * time.Millisecond })
	tok := mustSign(t, k2, "at+jwt", claimsAt(is, c))
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 1000 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a token of the newly published key: %v", err)
	}
	if n := is.jwksFetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches for 1000 concurrent unknown kids, want 1 (plus New's)", n-1)
	}

	// A kid that is nowhere: refused, and no fetch within the interval.
	ghost := newKey(t, "ghost", latch.ES256)
	for range 100 {
		if _, err := v.Verify(context.Background(), mustSign(t, ghost, "at+jwt", claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("unknown kid: %v, want ErrUnknownKey", err)
		}
	}
	if n := is.jwksFetches.Load(); n != 2 {
		t.Fatalf("unknown kids within the interval caused %d fetches", n-2)
	}
	c.Advance(10*time.Minute + time.Second)
	if _, err := v.Verify(context.Background(), mustSign(t, ghost, "at+jwt", claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := is.jwksFetches.Load(); n != 3 {
		t.Fatalf("after the interval: %d fetches, want 3", n)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestKeySet_Rotation_PickedUpOnSchedule_RespectingMaxAge(t *testing.T) {
	k1, k2 := newKey(t, "k1", latch.ES256), newKey(t, "k2", latch.EdDSA)
	is := newIssuer(t, k1)
	is.set(func(is *issuer) { is.cacheControl = "public, max-age=120" })
	c := newClock()
	cfg := is.config(c)
	cfg.RefreshFloor = time.Minute
	cfg.UnknownKeyInterval = time.Hour // only the schedule may fetch
	v := mustNew(t, cfg)
	ctx := context.Background()

	// Pre-publication: k2 appears in the JWKS; k1 still signs.
	is.publish(k2.jwk())
	c.Advance(119 * time.Second)
	if _, err := v.Verify(ctx, mustSign(t, k1, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatal(err)
	}
	if n := is.jwksFetches.Load(); n != 1 {
		t.Fatalf("refetched before max-age: %d fetches", n)
	}
	c.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, mustSign(t, k1, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background refresh", func() bool { _, _, err := v.keys.Key(ctx, "k2"); return err == nil })
	// k2 signs now; it was picked up by the schedule, not by an unknown kid.
	if _, err := v.Verify(ctx, mustSign(t, k2, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if n := is.jwksFetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestKeySet_MaxAge_ClampedToFloorAndCeiling(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"public, max-age=5", time.Minute},
		{"public, max-age=900", 900 * time.Second},
		{"max-age=86400", time.Hour},
		{"no-store", time.Minute},
		{"", time.Minute},
		{"max-age=bogus", time.Minute},
	} {
		t.Run(tc.cc, func(t *testing.T) {
			is := newIssuer(t, newKey(t, "k1", latch.ES256))
			is.set(func(is *issuer) { is.cacheControl = tc.cc })
			c := newClock()
			v := mustNew(t, is.config(c))
			if got := v.keys.(*remoteKeys).snap.Load().next.Sub(c.Now()); got != tc.want {
				t.Fatalf("Cache-Control %q: refresh after %v, want %v", tc.cc, got, tc.want)
			}
		})
	}
}

func TestKeySet_IssuerDown_KeepsServingWithCachedKeys(t *testing.T) {
	k1 := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k1)
	c := newClock()
	cfg := is.config(c)
	cfg.DisableCache = true
	cfg.UnknownKeyInterval = time.Second
	v := mustNew(t, cfg)
	ctx := context.Background()
	is.set(func(is *issuer) { is.down = true })
	for range 3 {
		c.Advance(2 * time.Hour) // past any refresh deadline
		if _, err := v.Verify(ctx, mustSign(t, k1, "at+jwt", claimsAt(is, c))); err != nil {
			t.Fatalf("with the issuer down: %v", err)
		}
		// The failed refresh reschedules itself; the keys stay.
		waitFor(t, "the failed refresh", func() bool { return v.keys.(*remoteKeys).snap.Load().next.After(c.Now()) })
	}
	// An unknown kid is refused, the known keys still work.
	if _, err := v.Verify(ctx, mustSign(t, newKey(t, "k9", latch.ES256), "at+jwt", claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid with the issuer down: %v", err)
	}
	if _, err := v.Verify(ctx, mustSign(t, k1, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatal(err)
	}
	// The issuer comes back: the next due refresh succeeds.
	is.set(func(is *issuer) { is.down = false })
	n := is.jwksFetches.Load()
	c.Advance(2 * time.Hour)
	v.Verify(ctx, mustSign(t, k1, "at+jwt", claimsAt(is, c)))
	waitFor(t, "a successful refresh", func() bool { return is.jwksFetches.Load() > n })
}

func TestKeySet_BadKeysRefusedOneByOne(t *testing.T) {
	good := newKey(t, "good", latch.ES256)
	enc := newKey(t, "enc", latch.ES256)
	ops := newKey(t, "ops", latch.ES256)
	priv := newKey(t, "priv", latch.ES256)
	alg := newKey(t, "rs-not-allowed", latch.RS256)
	is := newIssuer(t, good)
	encJWK := enc.jwk()
	encJWK["use"] = "enc"
	opsJWK := ops.jwk()
	delete(opsJWK, "use")
	opsJWK["key_ops"] = []string{"encrypt"}
	privJWK := priv.jwk()
	privJWK["d"] = enc.jwk()["x"] // any value: the member alone refuses it
	is.publish(encJWK, opsJWK, privJWK, alg.jwk(), weakRSAJWK(t, "weak"))
	c := newClock()
	v := mustNew(t, is.config(c))
	ctx := context.Background()
	if _, err := v.Verify(ctx, mustSign(t, good, "at+jwt", claimsAt(is, c))); err != nil {
		t.Fatalf("the good key: %v", err)
	}
	for _, k := range []*testKey{enc, ops, priv} {
		if _, err := v.Verify(ctx, mustSign(t, k, "at+jwt", claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
			t.Errorf("token of refused key %s: %v, want ErrUnknownKey", k.kid, err)
		}
	}
	if got := len(v.keys.(*remoteKeys).snap.Load().keys); got != 1 {
		t.Fatalf("%d usable keys, want 1", got)
	}
}

func TestVerify_RequiredClaims(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	v := mustNew(t, is.config(c))
	for name, f := range map[string]func(*token.Claims){
		"sub":       func(c *token.Claims) { c.Subject = "" },
		"jti":       func(c *token.Claims) { c.ID = "" },
		"client_id": func(c *token.Claims) { c.ClientID = "" },
	} {
		cl := claimsAt(is, c)
		f(cl)
		if _, err := v.Verify(context.Background(), mustSign(t, k, "at+jwt", cl)); !errors.Is(err, ErrMissingClaim) {
			t.Errorf("without %s: %v, want ErrMissingClaim", name, err)
		}
	}
}

func TestCache_Hit_ReturnsSameClaims(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	v := mustNew(t, is.config(c))
	tok := mustSign(t, k, "at+jwt", claimsAt(is, c))
	a := must(v.Verify(context.Background(), tok))
	b := must(v.Verify(context.Background(), tok))
	if a != b {
		t.Fatal("the second verification did not come from the cache")
	}
}

// TestCache_DenylistedJTI_RefusedEvenWhenCached is security invariant 4 on
// the cache: the denylist is keyed on (iss, jti) and asked on every hit.
func TestCache_DenylistedJTI_RefusedEvenWhenCached(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	var mu sync.Mutex
	deny := map[[2]string]bool{}
	cfg := is.config(c)
	cfg.IsRevoked = func(_ context.Context, iss, jti string) bool {
		mu.Lock()
		defer mu.Unlock()
		return deny[[2]string{iss, jti}]
	}
	v := mustNew(t, cfg)
	cl := claimsAt(is, c)
	tok := mustSign(t, k, "at+jwt", cl)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	deny[[2]string{cl.Issuer, cl.ID}] = true
	mu.Unlock()
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("denylisted jti, cached token: %v, want ErrRevoked", err)
	}
	// A re-signed token (ECDSA: a fresh signature, other bytes, same jti)
	// is refused too: the denylist never looks at token bytes.
	if _, err := v.Verify(context.Background(), mustSign(t, k, "at+jwt", cl)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("denylisted jti, other token bytes: %v, want ErrRevoked", err)
	}
}

func TestCache_EntryNotServedAfterExp(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	v := mustNew(t, is.config(c)) // Leeway 30s
	cl := claimsAt(is, c)
	cl.ExpiresAt = c.Now().Unix() + 60
	tok := mustSign(t, k, "at+jwt", cl)
	first := must(v.Verify(context.Background(), tok))
	c.Advance(61 * time.Second) // past exp, within leeway: verified afresh
	again, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	if again == first {
		t.Fatal("a cache entry was served after the token's exp")
	}
	c.Advance(30 * time.Second)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("past exp and leeway: %v, want ErrExpired", err)
	}
}

func TestCache_IsBounded(t *testing.T) {
	k := newKey(t, "k1", latch.EdDSA)
	is := newIssuer(t, k)
	c := newClock()
	cfg := is.config(c)
	cfg.CacheEntries = 8
	v := mustNew(t, cfg)
	for i := range 50 {
		if _, err := v.Verify(context.Background(), mustSign(t, k, "at+jwt", claimsAt(is, c))); err != nil {
			t.Fatal(i, err)
		}
		if n := v.cache.Len(); n > 8 {
			t.Fatalf("cache holds %d entries, bound 8", n)
		}
	}
}

func TestCache_KeyRemovedFromJWKS_FlushesTokensItSigned(t *testing.T) {
	k1, k2 := newKey(t, "k1", latch.ES256), newKey(t, "k2", latch.ES256)
	is := newIssuer(t, k1, k2)
	c := newClock()
	cfg := is.config(c)
	cfg.UnknownKeyInterval = time.Second
	v := mustNew(t, cfg)
	ctx := context.Background()
	tok := mustSign(t, k1, "at+jwt", claimsAt(is, c))
	must(v.Verify(ctx, tok))
	// k1 is retired at once (compromised); the next fetch drops it.
	is.setKeys(k2)
	c.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, mustSign(t, newKey(t, "k3", latch.ES256), "at+jwt", claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("cached token of a removed key: %v, want ErrUnknownKey", err)
	}
}

func TestCache_Disabled_VerifiesEveryTime(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	cfg := is.config(c)
	cfg.DisableCache = true
	v := mustNew(t, cfg)
	tok := mustSign(t, k, "at+jwt", claimsAt(is, c))
	if must(v.Verify(context.Background(), tok)) == must(v.Verify(context.Background(), tok)) {
		t.Fatal("cache disabled, yet the same claims came back")
	}
}

func TestConfig_Validate(t *testing.T) {
	base := Config{Issuer: "https://issuer.example", Audience: "api"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"http issuer", func(c *Config) { c.Issuer = "http://issuer.example" }, "InsecureAllowHTTP"},
		{"http issuer allowed", func(c *Config) { c.Issuer = "http://127.0.0.1:1"; c.InsecureAllowHTTP = true }, ""},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://issuer.example"; c.InsecureAllowHTTP = true }, "scheme must be https"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://issuer.example?a=b" }, "without query"},
		{"issuer with fragment", func(c *Config) { c.Issuer = "https://issuer.example#x" }, "without query"},
		{"relative issuer", func(c *Config) { c.Issuer = "/issuer" }, "absolute URL"},
		{"no audience", func(c *Config) { c.Audience = "" }, "Audience is required"},
		{"no audience skipped", func(c *Config) { c.Audience = ""; c.SkipAudienceCheck = true }, ""},
		{"alg none", func(c *Config) { c.Algorithms = []latch.Algorithm{"none"} }, "unsupported algorithm"},
		{"alg HS256", func(c *Config) { c.Algorithms = []latch.Algorithm{"HS256"} }, "unsupported algorithm"},
		{"alg twice", func(c *Config) { c.Algorithms = []latch.Algorithm{latch.ES256, latch.ES256} }, "twice"},
		{"all algs", func(c *Config) { c.Algorithms = latch.Algorithms }, ""},
		{"leeway negative", func(c *Config) { c.Leeway = -time.Second }, "Leeway"},
		{"leeway huge", func(c *Config) { c.Leeway = time.Hour }, "Leeway"},
		{"cache negative", func(c *Config) { c.CacheEntries = -1 }, "CacheEntries"},
		{"floor above ceiling", func(c *Config) { c.RefreshFloor = time.Hour; c.RefreshCeiling = time.Minute }, "RefreshFloor"},
		{"unknown interval negative", func(c *Config) { c.UnknownKeyInterval = -1 }, "UnknownKeyInterval"},
		{"timeout negative", func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{"max bytes negative", func(c *Config) { c.MaxResponseBytes = -1 }, "MaxResponseBytes"},
		{"bad cookie name", func(c *Config) { c.CookieName = "a b" }, "CookieName"},
		{"host cookie", func(c *Config) { c.CookieName = "__Host-at" }, ""},
		{"realm with quote", func(c *Config) { c.Realm = `a"b` }, "Realm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			err := cfg.withDefaults().Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestConfig_WithDefaults(t *testing.T) {
	c := Config{Issuer: "https://i.example", Audience: "api"}.withDefaults()
	if fmt.Sprint(c.Algorithms) != "[ES256]" || c.Leeway != DefaultLeeway || c.CacheEntries != DefaultCacheEntries ||
		c.UnknownKeyInterval != DefaultUnknownKeyInterval || c.RefreshFloor != time.Minute || c.RefreshCeiling != time.Hour ||
		c.Timeout != DefaultTimeout || c.MaxResponseBytes != DefaultMaxResponseBytes || c.HTTPClient == nil ||
		c.Realm != "api" || c.Logger == nil || c.Now == nil {
		t.Fatalf("withDefaults: %+v", c)
	}
	if c.HTTPClient.CheckRedirect == nil {
		t.Fatal("the default client follows redirects")
	}
}
