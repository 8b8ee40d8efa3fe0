package main

import (
	"slices"
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
