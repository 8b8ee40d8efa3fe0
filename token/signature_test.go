package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/latch-auth/latch"
)

func TestSignSignature_VerifySignature_RoundTrip(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	input := []byte("header.payload")
	sig, err := SignSignature(latch.ES256, ec, input)
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256: %d bytes, %v", len(sig), err)
	}
	if err := VerifySignature(latch.ES256, &ec.PublicKey, input, sig); err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(latch.ES256, &ec.PublicKey, []byte("other"), sig); !errors.Is(err, ErrSignature) {
		t.Fatalf("other input: %v", err)
	}
	if err := VerifySignature(latch.ES256, &ec.PublicKey, input, sig[:63]); !errors.Is(err, ErrSignature) {
		t.Fatalf("short signature: %v", err)
	}
	if err := VerifySignature(latch.EdDSA, &ec.PublicKey, input, sig); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("EC key for EdDSA: %v", err)
	}
	if err := VerifySignature("HS256", &ec.PublicKey, input, sig); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("HS256: %v", err)
	}
	esig, err := SignSignature(latch.EdDSA, ed, input)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(latch.EdDSA, ed.Public(), input, esig); err != nil {
		t.Fatal(err)
	}
	if _, err := SignSignature(latch.ES256, ed, input); err == nil {
		t.Fatal("Ed25519 key signed ES256")
	}
}

func TestEachMember(t *testing.T) {
	var names []string
	err := EachMember([]byte(` {"a":"x", "b" : {"c":[1,"}"]}, "\u0061b":null} `), func(name, raw string) error {
		names = append(names, name+"="+raw)
		return nil
	})
	if err != nil || len(names) != 3 || names[1] != `b={"c":[1,"}"]}` || names[2] != "ab=null" {
		t.Fatalf("%q, %v", names, err)
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `[1]`, `{"a":}`, `"s"`, ``, `{"a":1} x`} {
		if err := EachMember([]byte(bad), func(string, string) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if s, err := StringValue(`"a\"b"`); err != nil || s != `a"b` {
		t.Fatalf("%q %v", s, err)
	}
	if _, err := StringValue(`7`); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

// extraValue must decode exactly as encoding/json into an any.
func TestExtraValue_SameAsEncodingJSON(t *testing.T) {
	for _, raw := range []string{`"a"`, `"\u00e9\n"`, `{"jkt":"abc"}`, `{"sub":"gw","x":"\ud83d\ude00"}`, `{}`, `{"a":1}`, `{"a":"x","a":"y"}`, `{"a":{"b":"c"}}`, `[1,"a"]`, `7.5`, `true`, `null`} {
		got, err := extraValue(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var want any
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, encoding/json %#v", raw, got, want)
		}
	}
}
