package keys

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value takes defaults", Config{}, true},
		{"EdDSA", Config{Algorithm: latch.EdDSA}, true},
		{"RS256 4096", Config{Algorithm: latch.RS256, RSABits: 4096}, true},
		{"PS256 3072", Config{Algorithm: latch.PS256, RSABits: 3072}, true},
		{"explicit durations", Config{PrePublish: 10 * time.Minute, MaxTokenTTL: time.Hour, Leeway: 30 * time.Second}, true},
		{"unknown algorithm", Config{Algorithm: "HS256"}, false},
		{"none", Config{Algorithm: "none"}, false},
		{"lower-case es256", Config{Algorithm: "es256"}, false},
		{"negative pre-publication", Config{PrePublish: -time.Second}, false},
		{"negative max token TTL", Config{MaxTokenTTL: -time.Second}, false},
		{"negative leeway", Config{Leeway: -time.Second}, false},
		{"RSA 1024", Config{RSABits: 1024}, false},
		{"RSA 2047", Config{RSABits: 2047}, false},
		{"RSA 8192", Config{RSABits: 8192}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestConfig_WithDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Algorithm != latch.ES256 || c.PrePublish != time.Hour || c.MaxTokenTTL != 24*time.Hour ||
		c.Leeway != time.Minute || c.RSABits != 2048 || c.Now == nil || c.Rand == nil {
		t.Fatalf("withDefaults() = %+v", c)
	}
}

func TestCacheControl_WellBelowPrePublication(t *testing.T) {
	tests := []struct {
		prePublish time.Duration
		want       string
	}{
		{time.Hour, "public, max-age=900"},
		{24 * time.Hour, "public, max-age=900"}, // capped: bounds how long a removed key lingers
		{10 * time.Minute, "public, max-age=150"},
		{2 * time.Minute, "public, max-age=30"},
		{4 * time.Second, "public, max-age=1"},
		{time.Second, "no-cache"},
	}
	for _, tt := range tests {
		if got := cacheControl(tt.prePublish); got != tt.want {
			t.Errorf("cacheControl(%v) = %q, want %q", tt.prePublish, got, tt.want)
		}
	}
}
