package token

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

// FuzzParseOpaque: ParseOpaque never panics, and whatever it accepts is the
// one canonical encoding NewOpaque would produce from the same bytes.
func FuzzParseOpaque(f *testing.F) {
	for _, k := range []latch.TokenKind{latch.KindAccess, latch.KindRefresh} {
		tok, _ := NewOpaque(k, &counter{})
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(strings.ToUpper(tok))
		tagged, _ := NewTaggedOpaque(k, mustTagKey(f, 1), &counter{})
		f.Add(tagged)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		kind, err := ParseOpaque(raw)
		if err != nil {
			return
		}
		body, err := b64.DecodeString(raw[prefixLen : prefixLen+opaqueBodyLen])
		if err != nil {
			t.Fatalf("accepted %q with an undecodable body", raw)
		}
		again, err := NewOpaque(kind, bytes.NewReader(body))
		if len(raw) == taggedLen {
			// The key id and tag are opaque here; each must be in its
			// one canonical encoding, which is what the CRC then covers.
			for _, part := range []string{raw[prefixLen+opaqueBodyLen : prefixLen+opaqueBodyLen+tagKeyIDLen], raw[prefixLen+opaqueBodyLen+tagKeyIDLen : taggedLen-checksumLen]} {
				if b, derr := b64.DecodeString(part); derr != nil || b64.EncodeToString(b) != part {
					t.Fatalf("accepted %q with a non-canonical part %q", raw, part)
				}
			}
			return
		}
		if err != nil || again != raw {
			t.Fatalf("accepted %q, but its bytes make %q", raw, again)
		}
	})
}

// goJoseVerifies parses and verifies raw with go-jose against the keys of ks,
// pinned to their algorithms as Verify pins them, and returns the payload.
func goJoseVerifies(tb testing.TB, raw string, ks staticKeys) ([]byte, bool) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, false
	}
	k, ok := ks[jws.Signatures[0].Header.KeyID]
	if !ok || string(k.alg) != jws.Signatures[0].Header.Algorithm {
		return nil, false
	}
	payload, err := jws.Verify(k.pub)
	return payload, err == nil
}

// FuzzVerify: Verify never panics, and any token it accepts has a valid
// signature per go-jose too (a differential check of our hand-written JWS).
// The fuzzer drives two inputs: a whole token, and a header and payload
// that the test signs with the real ES256 key, so that mutations reach the
// header and claims parsers behind a valid signature.
func FuzzVerify(f *testing.F) {
	keys := keysFor(f)
	ks := testKeySet(f)
	claims := mustJSON(f, testClaims())
	hdr := `{"alg":"ES256","kid":"es","typ":"at+jwt"}`
	for _, alg := range latch.Algorithms {
		f.Add(mustSign(f, keys[alg].signer, "at+jwt", testClaims()), hdr, claims)
	}
	f.Add("", `{"alg":"none","kid":"es","typ":"at+jwt"}`, claims)
	f.Add("a.b.c", `{"alg":"ES256","kid":"es","typ":"at+jwt","jwk":{}}`, `{"iss":"`+testIssuer+`","aud":["`+testAudience+`"],"exp":1800000600,"iat":1800000000,"x":[{"y":null}]}`)
	f.Add("..", `{"alg":"ES256","kid":"es","alg":"ES256"}`, `[]`)
	opts := testOptions()
	f.Fuzz(func(t *testing.T, raw, header, payload string) {
		if c, err := Verify(context.Background(), raw, ks, opts); err == nil {
			if _, ok := goJoseVerifies(t, raw, ks); !ok {
				t.Fatalf("Verify accepted %q (%+v), go-jose does not", raw, c)
			}
		}
		tok := signRaw(t, keys[latch.ES256], header, payload)
		c, err := Verify(context.Background(), tok, ks, opts)
		if err != nil {
			return
		}
		got, ok := goJoseVerifies(t, tok, ks)
		if !ok {
			t.Fatalf("Verify accepted header %q payload %q, go-jose does not", header, payload)
		}
		if string(got) != payload {
			t.Fatalf("go-jose payload %q, ours %q", got, payload)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatalf("accepted claims %q that encoding/json refuses: %v", got, err)
		}
		if m["iss"] != testIssuer || c.Issuer != testIssuer {
			t.Fatalf("accepted claims %q with iss %v", got, m["iss"])
		}
	})
}

// FuzzClaimsUnmarshal: Claims.UnmarshalJSON never panics; what it accepts
// is valid JSON that encoding/json reads the same way, and it survives a
// marshal/unmarshal round trip.
func FuzzClaimsUnmarshal(f *testing.F) {
	f.Add([]byte(mustJSON(f, testClaims())))
	f.Add([]byte(`{"iss":"\u00e9","aud":["a","b"],"exp":1.5e9,"nonce":{"a":[1,2,{"b":null}]},"x":"\ud800"}`))
	f.Add([]byte(`{"aud":null,"exp":null,"sub":null}`))
	f.Add([]byte(`{"iss":"a","iss":"b"}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Claims
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		if string(bytes.TrimSpace(data)) == "null" {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted %q, encoding/json refuses: %v", data, err)
		}
		for name, got := range map[string]string{"iss": c.Issuer, "sub": c.Subject, "jti": c.ID, "client_id": c.ClientID, "scope": c.Scope} {
			if v, ok := m[name]; ok && v != nil && v != got {
				t.Fatalf("%s = %q, encoding/json reads %q", name, got, v)
			}
		}
		for name, got := range map[string]int64{"exp": c.ExpiresAt, "iat": c.IssuedAt, "nbf": c.NotBefore} {
			if v, ok := m[name].(float64); ok && math.Abs(v) < 1<<53 && int64(math.Floor(v)) != got {
				t.Fatalf("%s = %d, encoding/json reads %v", name, got, v)
			}
		}
		for name, v := range c.Extra {
			if !reflect.DeepEqual(m[name], v) {
				t.Fatalf("Extra[%q] = %#v, encoding/json reads %#v", name, v, m[name])
			}
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", c, err)
		}
		var again Claims
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("round trip of %q: %v", b, err)
		}
		if c.Audience == nil {
			c.Audience = Audience{} // nil marshals as []
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip:\n%#v\n%#v", c, again)
		}
	})
}
