package password

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

// cheap are fast parameters for tests that do not measure cost.
var cheap = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func mustHash(tb testing.TB, password string, p Params) string {
	tb.Helper()
	h, err := Hash(password, p, nil)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return h
}

func wantInvalid(tb testing.TB, op string, err error) {
	tb.Helper()
	if latch.ErrorCode(err) != latch.EINVALID {
		tb.Errorf("%s: err = %v, want EINVALID", op, err)
	}
}

func TestHash_Verify_RoundTrip(t *testing.T) {
	for _, pw := range []string{"correct horse battery staple", "x", "pässwörd ✓", strings.Repeat("p", MaxPasswordLen), "nul\x00inside"} {
		h := mustHash(t, pw, cheap)
		ok, err := Verify(pw, h)
		if err != nil || !ok {
			t.Errorf("Verify(%.20q, Hash) = %v, %v; want true, nil", pw, ok, err)
		}
	}
}

func TestHash_Format_IsPHCWithTheGivenParams(t *testing.T) {
	salt := bytes.Repeat([]byte{0xfb}, 16) // 0xfb: base64 "+/" territory, std alphabet
	h, err := Hash("pw", DefaultParams, bytes.NewReader(salt))
	if err != nil {
		t.Fatal(err)
	}
	prefix := "$argon2id$v=19$m=19456,t=2,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$"
	if !strings.HasPrefix(h, prefix) {
		t.Fatalf("Hash = %q, want prefix %q", h, prefix)
	}
	if f := strings.Split(h, "$"); len(f) != 6 || strings.ContainsAny(f[4]+f[5], "=-_") {
		t.Errorf("Hash = %q: want std base64 without padding", h)
	}
	if got, err := ParamsOf(h); err != nil || got != DefaultParams {
		t.Errorf("ParamsOf(Hash) = %+v, %v; want %+v", got, err, DefaultParams)
	}
}

func TestHash_SaltsDiffer(t *testing.T) {
	a, b := mustHash(t, "pw", cheap), mustHash(t, "pw", cheap)
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
}

func TestHash_Refuses(t *testing.T) {
	for name, tc := range map[string]struct {
		pw string
		p  Params
	}{
		"empty password":    {"", cheap},
		"password too long": {strings.Repeat("p", MaxPasswordLen+1), cheap},
		"zero params":       {"pw", Params{}},
		"short new salt":    {"pw", Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: MinNewSaltLen - 1, KeyLen: 32}},
		"memory too big":    {"pw", Params{Memory: MaxMemory + 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}},
	} {
		_, err := Hash(tc.pw, tc.p, nil)
		wantInvalid(t, name, err)
	}
}

func TestHash_RandomFails_IsAnError(t *testing.T) {
	boom := errors.New("entropy source down")
	_, err := Hash("pw", cheap, iotestErrReader{boom})
	if !errors.Is(err, boom) {
		t.Fatalf("Hash with a failing reader: err = %v, want %v", err, boom)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestVerify_WrongPassword_IsFalse(t *testing.T) {
	h := mustHash(t, "correct horse", cheap)
	for _, pw := range []string{"correct hors", "correct horse ", "Correct horse", "correct horsf"} {
		if ok, err := Verify(pw, h); ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestVerify_RefusedPassword_IsInvalidAndFalse(t *testing.T) {
	h := mustHash(t, "pw", cheap)
	for _, pw := range []string{"", strings.Repeat("p", MaxPasswordLen+1)} {
		ok, err := Verify(pw, h)
		if ok {
			t.Errorf("Verify(%d bytes) = true", len(pw))
		}
		wantInvalid(t, fmt.Sprintf("Verify(%d bytes)", len(pw)), err)
	}
}

// Every single-character change to a valid hash either fails to parse or
// fails to verify: none verifies.
func TestVerify_TamperedHash_NeverMatches(t *testing.T) {
	h := mustHash(t, "pw", cheap)
	const alphabet = "$=,0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/-_"
	for i := range len(h) {
		for _, c := range []byte(alphabet) {
			if h[i] == c {
				continue
			}
			tampered := h[:i] + string(c) + h[i+1:]
			p, err := ParamsOf(tampered)
			if err != nil {
				continue
			}
			if p.Memory > 4096 || p.Iterations > 4 { // keep the test fast; those fail anyway
				continue
			}
			if ok, _ := Verify("pw", tampered); ok {
				t.Errorf("tampered hash %q verifies", tampered)
			}
		}
	}
}

func TestVerify_MalformedHash_IsInvalid(t *testing.T) {
	const (
		salt = "c29tZXNhbHQ"                                 // "somesalt"
		key  = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc" // 32 bytes
	)
	for name, h := range map[string]string{
		"empty":                "",
		"garbage":              "not a hash",
		"bcrypt":               "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":              "$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"argon2d":              "$argon2d$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"no version (v=16)":    "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key,
		"version 16":           "$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key,
		"params reordered":     "$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key,
		"extra param":          "$argon2id$v=19$m=65536,t=2,p=1,keyid=abc$" + salt + "$" + key,
		"missing param":        "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key,
		"leading zero":         "$argon2id$v=19$m=065536,t=2,p=1$" + salt + "$" + key,
		"plus sign":            "$argon2id$v=19$m=+65536,t=2,p=1$" + salt + "$" + key,
		"negative":             "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"overflow":             "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key,
		"memory 4 GiB":         "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key,
		"memory just over max": fmt.Sprintf("$argon2id$v=19$m=%d,t=2,p=1$%s$%s", MaxMemory+1, salt, key),
		"memory under 8p":      "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key,
		"iterations 0":         "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key,
		"iterations over max":  fmt.Sprintf("$argon2id$v=19$m=65536,t=%d,p=1$%s$%s", MaxIterations+1, salt, key),
		"parallelism 0":        "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key,
		"parallelism 256":      "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key,
		"parallelism over max": fmt.Sprintf("$argon2id$v=19$m=65536,t=2,p=%d$%s$%s", MaxParallelism+1, salt, key),
		"salt too short":       "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbA$" + key, // 7 bytes
		"salt too long":        "$argon2id$v=19$m=65536,t=2,p=1$" + strings.Repeat("A", 88) + "$" + key,
		"empty salt":           "$argon2id$v=19$m=65536,t=2,p=1$$" + key,
		"key too short":        "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key[:20], // 15 bytes
		"empty key":            "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$",
		"padded salt":          "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "=$" + key,
		"url-safe base64":      "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$nf65EOgLrQMR_uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4",
		"non-canonical bits":   "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR$" + key,
		"trailing dollar":      "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key + "$",
		"trailing newline":     "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key + "\n",
		"leading space":        " $argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"too long":             "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + strings.Repeat("A", 300),
		"upper-case algorithm": "$ARGON2ID$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"spaces in params":     "$argon2id$v=19$m=65536, t=2, p=1$" + salt + "$" + key,
	} {
		ok, err := Verify("password", h)
		if ok {
			t.Errorf("%s: Verify = true", name)
		}
		wantInvalid(t, name, err)
		if !NeedsRehash(h, DefaultParams) {
			t.Errorf("%s: NeedsRehash = false for an unreadable hash", name)
		}
	}
}

// Vectors of the reference implementation, P-H-C/phc-winner-argon2
// src/test.c, the hashtest() calls under "Test Argon2id version number"
// (version 0x13): what `echo -n password | argon2 somesalt -id -t 2 -m 16
// -p 1` prints. They pin the encoding (std base64, no padding, parameter
// order) as well as the hash. The m=262144 vector is left out (256 MiB).
func TestVerify_ReferenceImplementationVectors(t *testing.T) {
	for _, tc := range []struct{ pw, encoded string }{
		{"password", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"},
		{"password", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
		{"password", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc"},
		{"password", "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHQ$9qWtwbpyPd3vm1rB1GThgPzZ3/ydHL92zKL+15XZypg"},
		{"password", "$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$kCXUjmjvc5XMqQedpMTsOv+zyJEf5PhtGiUghW9jFyw"},
		{"differentpassword", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94"},
		{"password", "$argon2id$v=19$m=65536,t=2,p=1$ZGlmZnNhbHQ$vfMrBczELrFdWP0ZsfhWsRPaHppYdP3MVEMIVlqoFBw"},
	} {
		ok, err := Verify(tc.pw, tc.encoded)
		if err != nil || !ok {
			t.Errorf("Verify(%q, %s) = %v, %v; want true, nil", tc.pw, tc.encoded, ok, err)
		}
		if ok, _ := Verify(tc.pw+"x", tc.encoded); ok {
			t.Errorf("Verify(%q, %s) = true", tc.pw+"x", tc.encoded)
		}
		// decode accepts only what encode writes, so this also shows that
		// our encoder writes the reference's strings byte for byte.
	}
}

func TestNeedsRehash(t *testing.T) {
	h := mustHash(t, "pw", cheap)
	if NeedsRehash(h, cheap) {
		t.Error("NeedsRehash with the same params = true")
	}
	for _, p := range []Params{
		{Memory: 128, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 32, KeyLen: 32},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 64},
		DefaultParams,
	} {
		if !NeedsRehash(h, p) {
			t.Errorf("NeedsRehash(%+v) of a hash made with %+v = false", p, cheap)
		}
	}
}

func TestParams_Validate(t *testing.T) {
	if err := DefaultParams.Validate(); err != nil {
		t.Fatalf("DefaultParams.Validate: %v", err)
	}
	max := Params{Memory: MaxMemory, Iterations: MaxIterations, Parallelism: MaxParallelism, SaltLen: MaxSaltLen, KeyLen: MaxKeyLen}
	min := Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLen: MinSaltLen, KeyLen: MinKeyLen}
	for _, p := range []Params{max, min} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", p, err)
		}
	}
	for name, mutate := range map[string]func(*Params){
		"memory over max":      func(p *Params) { p.Memory = MaxMemory + 1 },
		"memory under 8p":      func(p *Params) { p.Parallelism, p.Memory = 4, 31 },
		"iterations 0":         func(p *Params) { p.Iterations = 0 },
		"iterations over max":  func(p *Params) { p.Iterations = MaxIterations + 1 },
		"parallelism 0":        func(p *Params) { p.Parallelism = 0 },
		"parallelism over max": func(p *Params) { p.Parallelism = MaxParallelism + 1 },
		"salt short":           func(p *Params) { p.SaltLen = MinSaltLen - 1 },
		"salt long":            func(p *Params) { p.SaltLen = MaxSaltLen + 1 },
		"key short":            func(p *Params) { p.KeyLen = MinKeyLen - 1 },
		"key long":             func(p *Params) { p.KeyLen = MaxKeyLen + 1 },
	} {
		p := DefaultParams
		mutate(&p)
		wantInvalid(t, name, p.Validate())
	}
	// The longest valid PHC string fits the pre-parse bound.
	longest := encode(Params{Memory: MaxMemory, Iterations: MaxIterations, Parallelism: MaxParallelism},
		make([]byte, MaxSaltLen), make([]byte, MaxKeyLen))
	if len(longest) > maxEncodedLen {
		t.Errorf("longest valid hash is %d bytes, over maxEncodedLen %d", len(longest), maxEncodedLen)
	}
	if _, err := ParamsOf(longest); err != nil {
		t.Errorf("ParamsOf(longest valid hash): %v", err)
	}
}

func TestDummyVerify(t *testing.T) {
	if err := DummyVerify("pw", cheap); err != nil {
		t.Errorf("DummyVerify: %v", err)
	}
	if err := DummyVerify("pw", Params{}); err != nil { // falls back to DefaultParams
		t.Errorf("DummyVerify(zero params): %v", err)
	}
	wantInvalid(t, "DummyVerify(empty)", DummyVerify("", cheap))
	wantInvalid(t, "DummyVerify(too long)", DummyVerify(strings.Repeat("p", MaxPasswordLen+1), cheap))
}

// BenchmarkHash_Default is the cost of one login (Verify costs the same) at
// DefaultParams on one core: 1e9 / ns/op is logins per second per core.
func BenchmarkHash_Default(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", DefaultParams, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkVerify_Default and BenchmarkDummyVerify_Default should report
// the same ns/op: an unknown username costs what a wrong password costs.
func BenchmarkVerify_Default(b *testing.B) {
	h := mustHash(b, "correct horse battery staple", DefaultParams)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify("wrong horse battery staple", h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDummyVerify_Default(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := DummyVerify("wrong horse battery staple", DefaultParams); err != nil {
			b.Fatal(err)
		}
	}
}
