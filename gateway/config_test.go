package gateway

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	up, _ := url.Parse("http://127.0.0.1:9000/base")
	ok := Config{Issuer: "https://auth.example.com", ClientID: "gw", ClientSecret: "s", Upstream: up}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // "" valid; else a substring of the error
	}{
		{"minimal", func(*Config) {}, ""},
		{"http issuer refused", func(c *Config) { c.Issuer = "http://auth.example.com" }, "use https"},
		{"http issuer allowed", func(c *Config) { c.Issuer = "http://127.0.0.1:8080"; c.InsecureAllowHTTP = true }, ""},
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://auth.example.com/?x=1" }, "without user info, query or fragment"},
		{"http token endpoint", func(c *Config) { c.TokenEndpoint = "http://auth.example.com/token" }, "use https"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "ClientID and ClientSecret are required"},
		{"no client secret", func(c *Config) { c.ClientSecret = "" }, "ClientID and ClientSecret are required"},
		{"no upstream", func(c *Config) { c.Upstream = nil }, "Upstream is required"},
		{"upstream scheme", func(c *Config) { c.Upstream = &url.URL{Scheme: "ftp", Host: "x"} }, "http or https URL"},
		{"upstream without host", func(c *Config) { c.Upstream = &url.URL{Scheme: "http", Path: "/x"} }, "http or https URL"},
		{"upstream with user info", func(c *Config) { c.Upstream = &url.URL{Scheme: "http", Host: "x", User: url.User("u")} }, "without user info"},
		{"AcceptJWT without audience", func(c *Config) { c.AcceptJWT = true }, "AcceptJWT needs Audience"},
		{"AcceptJWT with audience", func(c *Config) { c.AcceptJWT = true; c.Audience = "api" }, ""},
		{"negative entries", func(c *Config) { c.CacheEntries = -1 }, "CacheEntries is negative"},
		{"negative TTL", func(c *Config) { c.CacheTTL = -time.Second }, "must not be negative"},
		{"negative negative TTL", func(c *Config) { c.NegativeTTL = -time.Second }, "must not be negative"},
		{"margin too large", func(c *Config) { c.ExpiryMargin = 2 * time.Minute }, "under a minute"},
		{"bad realm", func(c *Config) { c.Realm = `a"b` }, "Realm"},
		{"http key endpoint", func(c *Config) { c.OpaqueTokenKeysEndpoint = "http://auth.example.com/keys" }, "use https"},
		{"negative untagged rate", func(c *Config) { c.UntaggedRate = -1 }, "must not be negative"},
		{"negative per-source rate", func(c *Config) { c.UntaggedPerSourceRate = -1 }, "must not be negative"},
		{"negative log interval", func(c *Config) { c.LogInterval = -time.Second }, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.withDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}

func TestConfig_WithDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.CacheEntries != DefaultCacheEntries || c.CacheTTL != DefaultCacheTTL || c.ExpiryMargin != DefaultExpiryMargin ||
		c.Timeout != DefaultTimeout || c.MaxResponseBytes != DefaultMaxResponseBytes || c.Realm != DefaultRealm ||
		c.UntaggedRate != DefaultUntaggedRate || c.UntaggedPerSourceRate != DefaultUntaggedPerSourceRate || c.LogInterval != DefaultLogInterval ||
		c.HTTPClient == nil || c.Transport == nil || c.Logger == nil || c.Now == nil || c.NegativeTTL != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	// A redirect from the token endpoint is not followed: it could carry
	// the client secret elsewhere.
	if c.HTTPClient.CheckRedirect == nil {
		t.Fatal("the default client follows redirects")
	}
}

func TestCache_DropDuringExchange_IsNotCached(t *testing.T) {
	c := newCache(10)
	now := time.Now()
	var k [32]byte
	gen := c.Generation()
	c.Drop(&[32]byte{1})
	c.Put(&k, answer{jwt: "x"}, now.Add(time.Minute), now, gen)
	if _, ok := c.Get(&k, now); ok {
		t.Fatal("an answer obtained before a Drop was cached after it")
	}
	c.Put(&k, answer{jwt: "x"}, now.Add(time.Minute), now, c.Generation())
	if _, ok := c.Get(&k, now.Add(time.Minute)); ok {
		t.Fatal("served at its deadline")
	}
	for i := range 20 {
		c.Put(&[32]byte{byte(i)}, answer{jwt: "x"}, now.Add(time.Minute), now, c.Generation())
	}
	if c.Len() > 10 {
		t.Fatalf("cache of 10 holds %d", c.Len())
	}
}
