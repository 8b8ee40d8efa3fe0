package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestScopeList_SpacesAndCommasSeparate(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want []string
		err  bool
	}{
		{[]string{"read write"}, []string{"read", "write"}, false},
		{[]string{"read,write"}, []string{"read", "write"}, false},
		{[]string{" read ,, write\t"}, []string{"read", "write"}, false},
		{[]string{"openid", "profile,read"}, []string{"openid", "profile", "read"}, false},
		{[]string{"read read,read"}, []string{"read"}, false},
		{[]string{""}, nil, false},
		{[]string{`a\b`}, nil, true},
		{[]string{"caf\u00e9"}, nil, true},
	} {
		var s scopeList
		var err error
		for _, v := range tc.sets {
			if err = s.Set(v); err != nil {
				break
			}
		}
		if (err != nil) != tc.err || (!tc.err && !slices.Equal(s.scopes, tc.want)) {
			t.Errorf("%q: %q, %v; want %q", tc.sets, s.scopes, err, tc.want)
		}
	}
}

// TestConfig_YAMLErrorNamesTheRightLine: a config file's syntax error is
// reported at the line an editor shows it on, whether go-yaml's scanner or
// its parser found it.
func TestConfig_YAMLErrorNamesTheRightLine(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want string
	}{
		{"listen: 127.0.0.1:8080\nissuer: [oops\n", "line 2: did not find expected ',' or ']'"},
		{"listen: 127.0.0.1:8080\nissuer: {a: b\n", "line 2: did not find expected ',' or '}'"},
		{"a: b\nc: d\n- e\n", "line 3: did not find expected key"},
		{"listen: 127.0.0.1:8080\n  issuer: x\n", "line 2: mapping values are not allowed in this context"},
		{"listen: a\n\tissuer: b\n", "line 2: found a tab character"},
		{"listen: a\nissuer: \"open\n", "line 2: found unexpected end of stream"},
	} {
		path := filepath.Join(t.TempDir(), "latch.yaml")
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		code := Main(context.Background(), []string{"client", "list", "--config", path, "--data-dir", t.TempDir()}, strings.NewReader(""), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want %q", tc.doc, code, stderr.String(), tc.want)
		}
	}
}
