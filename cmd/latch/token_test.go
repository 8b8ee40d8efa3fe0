package main

import (
	"strings"
	"testing"
	"unicode"
)

func TestReadToken(t *testing.T) {
	const tok = "lt_at_abc.def-_"
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
		err   string
	}{
		{"argument", "", []string{tok}, tok, ""},
		{"dash reads stdin", tok + "\n", []string{"-"}, tok, ""},
		{"no argument reads stdin", tok + "\r\n", nil, tok, ""},
		{"no newline", tok, nil, tok, ""},
		{"Bearer prefix", "Bearer  " + tok + "\n", nil, tok, ""},
		{"bearer prefix any case", "bEaReR " + tok, nil, tok, ""},
		{"surrounding blanks", "\n\t " + tok + " \n\n", nil, tok, ""},
		{"empty", "", nil, "", "no token"},
		{"blank", " \n\t\n", nil, "", "no token"},
		{"Bearer alone", "Bearer \n", nil, "", "no token"},
		{"two lines", tok + "\n" + tok + "\n", nil, "", "more than one line"},
		{"space inside", "lt_at_ab cd", nil, "", "white space"},
		{"oversized stdin", strings.Repeat("a", maxTokenInput+1), nil, "", "more than 16384 bytes"},
		{"oversized argument", "", []string{strings.Repeat("a", maxTokenInput+1)}, "", "more than 16384 bytes"},
		{"largest", strings.Repeat("a", maxTokenInput), nil, strings.Repeat("a", maxTokenInput), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readToken(&env{stdin: strings.NewReader(tc.stdin)}, tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("readToken = %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("readToken = %.40q, %v; want %.40q", got, err, tc.want)
			}
		})
	}
	if _, err := readToken(&env{}, nil); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("no stdin: %v", err)
	}
}

// FuzzReadToken: whatever is on stdin, readToken returns an error or one
// non-empty token of at most maxTokenInput bytes without white space, and
// never echoes more than that in its error.
func FuzzReadToken(f *testing.F) {
	for _, s := range []string{"", "\n", "lt_at_x\n", "Bearer e30.e30.e30\r\n", "a\nb", "  x  ", "Bearer", "bearer \t y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stdin string) {
		got, err := readToken(&env{stdin: strings.NewReader(stdin)}, nil)
		if err != nil {
			if strings.Contains(err.Error(), stdin) && len(stdin) > 8 {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if got == "" || len(got) > maxTokenInput || strings.ContainsFunc(got, func(r rune) bool { return unicode.IsSpace(r) && r < 0x80 }) {
			t.Fatalf("readToken(%q) = %q", stdin, got)
		}
		if !strings.Contains(stdin, got) {
			t.Fatalf("readToken(%q) = %q, not part of the input", stdin, got)
		}
	})
}
