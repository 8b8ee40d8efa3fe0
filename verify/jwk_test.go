package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"math/big"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

func TestParseJWK(t *testing.T) {
	es, ed, rs := newKey(t, "es", latch.ES256), newKey(t, "ed", latch.EdDSA), newKey(t, "rs", latch.RS256)
	all := latch.Algorithms
	with := func(base map[string]any, kv ...any) map[string]any {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	offCurve := with(es.jwk(), "y", es.jwk()["x"])
	rsaPub := rs.priv.Public().(*rsa.PublicKey)
	for _, tc := range []struct {
		name    string
		jwk     any
		allowed []latch.Algorithm
		alg     latch.Algorithm // "" = refused
		err     string
	}{
		{"EC", es.jwk(), all, latch.ES256, ""},
		{"OKP", ed.jwk(), all, latch.EdDSA, ""},
		{"RSA", rs.jwk(), all, latch.RS256, ""},
		{"RSA PS256", with(rs.jwk(), "alg", "PS256"), all, latch.PS256, ""},
		{"EC no alg implied", with(es.jwk(), "alg", nil), all, latch.ES256, ""},
		{"RSA no alg, both allowed", with(rs.jwk(), "alg", nil), all, "", "2 allowed algorithms"},
		{"RSA no alg, one allowed", with(rs.jwk(), "alg", nil), []latch.Algorithm{latch.PS256}, latch.PS256, ""},
		{"EC no alg, not allowed", with(es.jwk(), "alg", nil), []latch.Algorithm{latch.EdDSA}, "", "0 allowed"},
		{"alg not allowed", es.jwk(), []latch.Algorithm{latch.EdDSA}, "", "not in Config.Algorithms"},
		{"alg does not fit", with(es.jwk(), "alg", "EdDSA"), all, "", "does not fit"},
		{"alg HS256", with(es.jwk(), "alg", "HS256"), all, "", "does not fit"},
		{"alg none", with(es.jwk(), "alg", "none"), all, "", "does not fit"},
		{"use enc", with(es.jwk(), "use", "enc"), all, "", "use"},
		{"use missing is fine", with(es.jwk(), "use", nil), all, latch.ES256, ""},
		{"key_ops verify", with(es.jwk(), "use", nil, "key_ops", []string{"verify"}), all, latch.ES256, ""},
		{"key_ops encrypt", with(es.jwk(), "use", nil, "key_ops", []string{"encrypt", "sign"}), all, "", "lacks verify"},
		{"key_ops not array", with(es.jwk(), "key_ops", "verify"), all, "", "key_ops"},
		{"private d", with(es.jwk(), "d", "AAAA"), all, "", "private member"},
		{"private RSA p", with(rs.jwk(), "p", "AAAA"), all, "", "private member"},
		{"symmetric k", map[string]any{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}, all, "", "private member"},
		{"oct without k", map[string]any{"kty": "oct", "kid": "s"}, all, "", "kty"},
		{"no kid", with(es.jwk(), "kid", nil), all, "", "no kid"},
		{"kid not string", with(es.jwk(), "kid", 7), all, "", "not a string"},
		{"EC P-384", with(es.jwk(), "crv", "P-384"), all, "", "P-256"},
		{"EC off curve", offCurve, all, "", "EC point"},
		{"EC short x", with(es.jwk(), "x", enc.EncodeToString(make([]byte, 31))), all, "", "31 bytes"},
		{"EC padded x", with(es.jwk(), "x", es.jwk()["x"].(string)+"="), all, "", "base64url"},
		{"EC std base64", with(es.jwk(), "x", strings.Repeat("+", 43)), all, "", "base64url"},
		{"OKP X25519", with(ed.jwk(), "crv", "X25519"), all, "", "Ed25519"},
		{"OKP short", with(ed.jwk(), "x", "AAAA"), all, "", "bytes"},
		{"RSA 1024", weakRSAJWK(t, "weak"), all, "", "1024 bits"},
		{"RSA leading zero", with(rs.jwk(), "n", enc.EncodeToString(append([]byte{0}, rsaPub.N.Bytes()...))), all, "", "minimal"},
		{"RSA even n", with(rs.jwk(), "n", enc.EncodeToString(new(big.Int).Add(rsaPub.N, big.NewInt(1)).Bytes())), all, "", "even"},
		{"RSA e=1", with(rs.jwk(), "e", "AQ"), all, "", "exponent"},
		{"RSA e even", with(rs.jwk(), "e", "AQAA"), all, "", "exponent"},
		{"RSA e huge", with(rs.jwk(), "e", "AQAAAAE"), all, "", "too large"},
		{"RSA no e", with(rs.jwk(), "e", nil), all, "", "missing"},
		{"duplicate member", `{"kty":"EC","kid":"a","kid":"b"}`, all, "", "twice"},
		{"not an object", `[1]`, all, "", "not a JSON object"},
		{"trailing data", mustJSON(es.jwk()) + "{}", all, "", "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, ok := tc.jwk.(string)
			if !ok {
				raw = mustJSON(tc.jwk)
			}
			_, k, err := parseJWK([]byte(raw), tc.allowed)
			if tc.alg != "" {
				if err != nil || k.alg != tc.alg {
					t.Fatalf("got alg %q, err %v; want %q", k.alg, err, tc.alg)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %s, want refusal", k.alg)
			}
			if tc.err != "" && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %q, want it to mention %q", err, tc.err)
			}
		})
	}
}

func TestParseJWK_KeysEqualOriginals(t *testing.T) {
	for _, alg := range []latch.Algorithm{latch.ES256, latch.EdDSA, latch.RS256} {
		k := newKey(t, "k", alg)
		_, pk, err := parseJWK([]byte(mustJSON(k.jwk())), latch.Algorithms)
		if err != nil {
			t.Fatal(err)
		}
		eq, _ := k.priv.Public().(interface{ Equal(crypto.PublicKey) bool })
		if eq == nil || !eq.Equal(pk.pub) {
			t.Fatalf("%s: parsed key differs from the original", alg)
		}
		switch pk.pub.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
		default:
			t.Fatalf("%s: type %T", alg, pk.pub)
		}
	}
}

func TestParseJWKS_DuplicateKid_DroppedAndNoUsableKey_IsError(t *testing.T) {
	a, b, c := newKey(t, "same", latch.ES256), newKey(t, "same", latch.ES256), newKey(t, "other", latch.ES256)
	set := func(keys ...any) []byte { return []byte(mustJSON(map[string]any{"keys": keys})) }
	keys, skipped, err := parseJWKS(set(a.jwk(), b.jwk(), c.jwk()), latch.Algorithms)
	if err != nil || len(keys) != 1 || len(skipped) != 1 {
		t.Fatalf("keys %v skipped %v err %v; want only 'other'", keys, skipped, err)
	}
	if _, ok := keys["same"]; ok {
		t.Fatal("a duplicated kid was kept")
	}
	for _, body := range []string{`{}`, `{"keys":{}}`, `{"keys":[]}`, `[]`, mustJSON(map[string]any{"keys": []any{weakRSAJWK(t, "w")}})} {
		if _, _, err := parseJWKS([]byte(body), latch.Algorithms); err == nil {
			t.Errorf("JWKS %.60s accepted", body)
		}
	}
}

// FuzzParseJWK: the parser never panics, and what it accepts is a public
// key of an allowed algorithm that fits it, from a JWK without private
// members and usable for verification.
func FuzzParseJWK(f *testing.F) {
	for _, alg := range []latch.Algorithm{latch.ES256, latch.EdDSA, latch.RS256} {
		f.Add([]byte(mustJSON(newKey(f, "k", alg).jwk())))
	}
	f.Add([]byte(`{"kty":"oct","kid":"s","k":"c2VjcmV0"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","kid":"a","x":"","y":"","d":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		allowed := []latch.Algorithm{latch.ES256, latch.EdDSA, latch.PS256}
		kid, k, err := parseJWK(data, allowed)
		if err != nil {
			return
		}
		if kid == "" {
			t.Fatal("accepted a key without kid")
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			t.Fatal("accepted invalid JSON")
		}
		for _, p := range privateMembers {
			if _, ok := m[p]; ok {
				t.Fatalf("accepted a key with private member %q", p)
			}
		}
		switch pub := k.pub.(type) {
		case *ecdsa.PublicKey:
			if k.alg != latch.ES256 || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
				t.Fatalf("EC key as %s", k.alg)
			}
		case ed25519.PublicKey:
			if k.alg != latch.EdDSA || len(pub) != ed25519.PublicKeySize {
				t.Fatalf("Ed25519 key as %s", k.alg)
			}
		case *rsa.PublicKey:
			if k.alg != latch.PS256 || pub.N.BitLen() < minRSABits || pub.E < 3 {
				t.Fatalf("RSA key as %s, %d bits, e %d", k.alg, pub.N.BitLen(), pub.E)
			}
		default:
			t.Fatalf("accepted %T", k.pub)
		}
	})
}
