package server

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/sqlite"
	"github.com/latch-auth/latch/token"
)

func TestConfig_Validate(t *testing.T) {
	valid := func() Config {
		c := Config{Issuer: "https://auth.example.com", Store: &sqlite.DB{}, Keys: &keys.Manager{}}
		c.withDefaults()
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"http issuer refused", func(c *Config) { c.Issuer = "http://auth.example.com" }, "--insecure-allow-http"},
		{"http issuer allowed when asked", func(c *Config) { c.Issuer = "http://127.0.0.1:8080"; c.InsecureAllowHTTP = true }, ""},
		{"missing issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://a.example/?x=1" }, "without query"},
		{"trailing slash", func(c *Config) { c.Issuer = "https://a.example/" }, "slash"},
		{"relative issuer", func(c *Config) { c.Issuer = "/auth" }, "absolute URL"},
		{"no store", func(c *Config) { c.Store = nil }, "Store and Keys"},
		{"negative ttl", func(c *Config) { c.AccessTokenTTL = -time.Second }, "negative"},
		{"ttl above max", func(c *Config) { c.AccessTokenTTL = 48 * time.Hour }, "exceeds"},
		{"negative rate", func(c *Config) { c.IntrospectionRate = -1 }, "introspection rate"},
		{"zero burst", func(c *Config) { c.IntrospectionBurst = 0 }, "introspection rate"},
		{"nil tag key", func(c *Config) { c.OpaqueTagKeys = []*token.TagKey{nil} }, "OpaqueTagKeys"},
		{"negative purge interval", func(c *Config) { c.PurgeInterval = -time.Second }, "PurgeInterval"},
		{"tiny body limit", func(c *Config) { c.MaxBodyBytes = 100 }, "too small"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}
