package token

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestClaims_MarshalJSON_RegisteredThenExtraInKeyOrder(t *testing.T) {
	c := Claims{
		Issuer: "https://i", Subject: "s", Audience: Audience{"a"}, ExpiresAt: 2, IssuedAt: 1, ID: "j",
		Extra: map[string]any{"z": 1, "fgp": "h", "nonce": "n\"<"},
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"iss":"https://i","sub":"s","aud":"a","exp":2,"iat":1,"jti":"j","fgp":"h","nonce":"n\"\u003c","z":1}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	p, _ := json.Marshal(&c)
	if string(p) != want {
		t.Fatalf("Marshal(&c) = %s", p)
	}
}

func TestClaims_MarshalJSON_MatchesEncodingJSONWithoutExtra(t *testing.T) {
	// The reflection-free path writes what encoding/json would write for
	// the struct tags.
	type plain Claims
	for _, c := range []Claims{
		*testClaims(),
		{},
		{Issuer: "é\u2028\x01<>&\"\\", Audience: Audience{"a", "b"}, Scope: "x"},
		{Audience: Audience{}, NotBefore: -5, ClientID: "c"},
		{Issuer: "\xff\xfe"},
	} {
		got, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		p := plain(c)
		want, _ := json.Marshal(p)
		// encoding/json writes aud by its own rules; compare after decoding.
		var g, w map[string]any
		json.Unmarshal(got, &g)
		json.Unmarshal(want, &w)
		if aud, ok := w["aud"].([]any); ok && len(aud) == 1 {
			w["aud"] = aud[0]
		}
		if aud, ok := w["aud"]; ok && aud == nil {
			w["aud"] = []any{}
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("Marshal(%+v)\n = %s\nwant %s", c, got, want)
		}
	}
}

func TestClaims_MarshalJSON_ExtraCollidingWithRegistered_IsError(t *testing.T) {
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"} {
		c := Claims{Extra: map[string]any{k: "x"}}
		if _, err := json.Marshal(c); err == nil {
			t.Errorf("Marshal with Extra[%q] succeeded", k)
		}
	}
}

func TestAudience_OneValueIsAString_ManyAnArray(t *testing.T) {
	for _, tc := range []struct {
		aud  Audience
		json string
	}{
		{Audience{"a"}, `"a"`},
		{Audience{"a", "b"}, `["a","b"]`},
		{Audience{}, `[]`},
		{nil, `[]`},
	} {
		b, _ := json.Marshal(tc.aud)
		if string(b) != tc.json {
			t.Errorf("Marshal(%q) = %s, want %s", tc.aud, b, tc.json)
		}
	}
	for _, tc := range []struct {
		json string
		want Audience
	}{
		{`"a"`, Audience{"a"}},
		{` [ "a" , "b" ] `, Audience{"a", "b"}},
		{`[]`, Audience{}},
		{`null`, nil},
		{`"\u0061"`, Audience{"a"}},
	} {
		var a Audience
		if err := json.Unmarshal([]byte(tc.json), &a); err != nil || !reflect.DeepEqual(a, tc.want) {
			t.Errorf("Unmarshal(%s) = %#v, %v; want %#v", tc.json, a, err, tc.want)
		}
	}
	for _, bad := range []string{`1`, `["a",1]`, `{"a":1}`, `[null]`, `true`} {
		var a Audience
		if err := json.Unmarshal([]byte(bad), &a); err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %#v", bad, a)
		}
	}
}

func TestClaims_UnmarshalJSON_UnknownClaimsLandInExtra(t *testing.T) {
	in := `{"iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1,"nbf":1,"jti":"j","client_id":"c","scope":"r w",
		"nonce":"n","auth_time":5,"cnf":{"x5t#S256":"abc"},"list":[1,{"a":[]}],"t":true,"nothing":null,"esc\"aped":"\u00e9"}`
	var c Claims
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer: "i", Subject: "s", Audience: Audience{"a", "b"}, ExpiresAt: 2, IssuedAt: 1, NotBefore: 1, ID: "j", ClientID: "c", Scope: "r w",
		Extra: map[string]any{
			"nonce": "n", "auth_time": float64(5), "cnf": map[string]any{"x5t#S256": "abc"},
			"list": []any{float64(1), map[string]any{"a": []any{}}}, "t": true, "nothing": nil, "esc\"aped": "é",
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Unmarshal =\n%#v\nwant\n%#v", c, want)
	}
	// And back: the same claims.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var again Claims
	if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip = %#v, %v", again, err)
	}
}

func TestClaims_UnmarshalJSON_ReplacesPreviousContent(t *testing.T) {
	c := *testClaims()
	c.Extra = map[string]any{"old": 1}
	if err := json.Unmarshal([]byte(`{"sub":"new"}`), &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Claims{Subject: "new"}) {
		t.Fatalf("Unmarshal kept old content: %+v", c)
	}
}

func TestClaims_UnmarshalJSON_Refuses(t *testing.T) {
	for _, tc := range []struct{ name, json string }{
		{"array", `[]`},
		{"string", `"x"`},
		{"number", `1`},
		{"truncated", `{"iss":"i"`},
		{"trailing garbage", `{"iss":"i"}x`},
		{"two objects", `{}{}`},
		{"duplicate registered", `{"iss":"a","iss":"b"}`},
		{"duplicate registered, escaped", `{"iss":"a","\u0069ss":"b"}`},
		{"duplicate registered, one null", `{"iss":null,"iss":"b"}`},
		{"duplicate extra", `{"x":1,"x":2}`},
		{"iss a number", `{"iss":1}`},
		{"sub an object", `{"sub":{}}`},
		{"exp a string", `{"exp":"1"}`},
		{"exp true", `{"exp":true}`},
		{"exp beyond int64", `{"exp":1e300}`},
		{"exp an array", `{"exp":[1]}`},
		{"aud a number", `{"aud":1}`},
		{"aud with a number", `{"aud":["a",1]}`},
		{"invalid JSON", `{"iss":'i'}`},
		{"deep nesting", `{"x":` + deep(20000) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Claims
			if err := json.Unmarshal([]byte(tc.json), &c); err == nil {
				t.Fatalf("Unmarshal(%s) succeeded: %+v", tc.json, c)
			}
			if _, err := c.parse([]byte(tc.json)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse(%s) = %v, want ErrMalformed", tc.json, err)
			}
		})
	}
}

func TestClaims_UnmarshalJSON_NumericDates(t *testing.T) {
	for _, tc := range []struct {
		json string
		want int64
	}{
		{`{"exp":1800000000}`, 1800000000},
		{`{"exp":1800000000.9}`, 1800000000},
		{`{"exp":1.8e9}`, 1800000000},
		{`{"exp":-1.5}`, -2},
		{`{"exp":null}`, 0},
		{`{"exp":9223372036854775807}`, 1<<63 - 1},
	} {
		var c Claims
		if err := json.Unmarshal([]byte(tc.json), &c); err != nil || c.ExpiresAt != tc.want {
			t.Errorf("Unmarshal(%s).ExpiresAt = %d, %v; want %d", tc.json, c.ExpiresAt, err, tc.want)
		}
	}
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		b = append(b, '[')
	}
	for i := 0; i < n; i++ {
		b = append(b, ']')
	}
	return string(b)
}
