package password

import (
	"strings"
	"testing"
)

// FuzzParamsOf feeds the PHC parser arbitrary strings, as a stored hash
// planted in the database or imported through the admin API would. It must
// never panic, and whatever it accepts must be within Params.Validate and
// exactly what encode writes (one spelling per hash). Seeds are in
// testdata/fuzz/FuzzParamsOf.
func FuzzParamsOf(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decode(s)
		if err != nil {
			if p != (Params{}) || salt != nil || key != nil {
				t.Fatalf("decode(%q) failed (%v) but returned values", s, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decode(%q) accepted params that Validate refuses: %v", s, err)
		}
		if got := encode(p, salt, key); got != s {
			t.Fatalf("decode(%q) accepted a non-canonical string; encode gives %q", s, got)
		}
		if !strings.HasPrefix(s, "$argon2id$v=19$") {
			t.Fatalf("decode(%q) accepted another algorithm or version", s)
		}
		// Verify on it, when cheap, must not panic either.
		if p.Memory <= 1024 && p.Iterations <= 2 {
			if _, err := Verify("password", s); err != nil {
				t.Fatalf("Verify on a hash decode accepts: %v", err)
			}
		}
	})
}
