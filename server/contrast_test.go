package server_test

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCSS_ContrastMeetsWCAG_AA computes, from templates/latch.css itself,
// the WCAG 2.2 contrast ratio of each pair of colours the pages put side
// by side, in the light and the dark scheme: at least 4.5:1 for text
// (SC 1.4.3) and 3:1 for the boundary of a control and the focus ring
// (SC 1.4.11).
func TestCSS_ContrastMeetsWCAG_AA(t *testing.T) {
	css := parseCSS(t, "templates/latch.css")
	const text, ui = 4.5, 3.0
	// Each check: the colour of fg's property against the colour of bg's.
	type ref struct{ selector, property string }
	cases := []struct {
		what   string
		fg, bg ref
		min    float64
	}{
		{"body text", ref{"body", "color"}, ref{"main", "background"}, text},
		{"brand", ref{".brand", "color"}, ref{"main", "background"}, text},
		{"lead text", ref{".lead", "color"}, ref{"main", "background"}, text},
		{"hint text", ref{".hint", "color"}, ref{"main", "background"}, text},
		{"link", ref{"a", "color"}, ref{"main", "background"}, text},
		{"input text", ref{"input[type=text]", "color"}, ref{"input[type=text]", "background"}, text},
		{"input border against the input", ref{"input[type=text]", "border"}, ref{"input[type=text]", "background"}, ui},
		{"input border against the card", ref{"input[type=password]", "border"}, ref{"main", "background"}, ui},
		{"invalid input border", ref{"input[aria-invalid=true]", "border-color"}, ref{"input[type=text]", "background"}, ui},
		{"button text", ref{"button", "color"}, ref{"button", "background"}, text},
		{"button text, hovered", ref{"button", "color"}, ref{"button:hover", "background"}, text},
		{"button against the card", ref{"button", "background"}, ref{"main", "background"}, ui},
		{"secondary button text", ref{"button.secondary", "color"}, ref{"button.secondary", "background"}, text},
		{"secondary button text, hovered", ref{"button.secondary:hover", "color"}, ref{"button.secondary:hover", "background"}, text},
		{"secondary button border", ref{"button", "border"}, ref{"main", "background"}, ui},
		{"focus ring against the card", ref{":focus-visible", "outline"}, ref{"main", "background"}, ui},
		{"focus ring against the page", ref{":focus-visible", "outline"}, ref{"body", "background"}, ui},
		{"error text", ref{".error", "color"}, ref{".error", "background"}, text},
		{"notice text", ref{".notice", "color"}, ref{".notice", "background"}, text},
		{"scope description", ref{".scope-text", "color"}, ref{".scopes li", "background"}, text},
		{"scope name", ref{".scope-name", "color"}, ref{".scopes li", "background"}, text},
		{"unknown scope description", ref{".unknown .scope-text", "color"}, ref{".scopes li.unknown", "background"}, text},
	}
	for _, scheme := range []string{"light", "dark"} {
		vars := css.vars(scheme)
		for _, tc := range cases {
			fg, ok1 := css.colour(t, vars, tc.fg.selector, tc.fg.property)
			bg, ok2 := css.colour(t, vars, tc.bg.selector, tc.bg.property)
			if !ok1 || !ok2 {
				continue
			}
			r := contrastRatio(fg, bg)
			t.Logf("%s, %s: %s on %s = %.2f:1", scheme, tc.what, fg, bg, r)
			if r < tc.min {
				t.Errorf("%s scheme, %s: %s on %s is %.2f:1, want at least %.1f:1", scheme, tc.what, fg, bg, r, tc.min)
			}
		}
	}
}

// TestContrastRatio_KnownValues checks the WCAG formula the CSS test uses.
func TestContrastRatio_KnownValues(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#777777", "#ffffff", 4.48},
		{"#0b57d0", "#ffffff", 6.39},
	} {
		if got := contrastRatio(tc.a, tc.b); math.Abs(got-tc.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", tc.a, tc.b, got, tc.want)
		}
	}
}

// contrastRatio is WCAG 2.2's contrast ratio of two #rrggbb colours.
func contrastRatio(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// luminance is WCAG 2.2's relative luminance of #rrggbb.
func luminance(hex string) float64 {
	var c [3]float64
	for i := range c {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		s := float64(v) / 255
		if s <= 0.04045 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}

// stylesheet is a parsed CSS file: its rules at the top level, and those
// inside @media (prefers-color-scheme: dark).
type stylesheet struct{ top, dark []cssRule }

type cssRule struct {
	selectors []string
	decls     map[string]string
}

func parseCSS(t *testing.T, path string) *stylesheet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(b), "")
	ss := &stylesheet{}
	var parse func(src string, dark bool)
	parse = func(src string, dark bool) {
		for {
			open := strings.IndexByte(src, '{')
			if open < 0 {
				return
			}
			head := strings.TrimSpace(src[:open])
			// The matching brace, for an @media block holding rules.
			depth, end := 0, -1
			for i := open; i < len(src) && end < 0; i++ {
				switch src[i] {
				case '{':
					depth++
				case '}':
					if depth--; depth == 0 {
						end = i
					}
				}
			}
			if end < 0 {
				t.Fatalf("%s: unbalanced braces after %q", path, head)
			}
			body := src[open+1 : end]
			src = src[end+1:]
			if strings.HasPrefix(head, "@media") {
				parse(body, dark || strings.Contains(head, "prefers-color-scheme: dark"))
				continue
			}
			r := cssRule{decls: map[string]string{}}
			for _, s := range strings.Split(head, ",") {
				r.selectors = append(r.selectors, strings.Join(strings.Fields(s), " "))
			}
			for _, d := range strings.Split(body, ";") {
				if k, v, ok := strings.Cut(d, ":"); ok {
					r.decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			if dark {
				ss.dark = append(ss.dark, r)
			} else {
				ss.top = append(ss.top, r)
			}
		}
	}
	parse(src, false)
	return ss
}

// vars returns the custom properties of :root in scheme, light or dark.
func (ss *stylesheet) vars(scheme string) map[string]string {
	vars := map[string]string{}
	rules := ss.top
	if scheme == "dark" {
		rules = append(rules[:len(rules):len(rules)], ss.dark...)
	}
	for _, r := range rules {
		if r.selectors[0] == ":root" {
			for k, v := range r.decls {
				if strings.HasPrefix(k, "--") {
					vars[k] = v
				}
			}
		}
	}
	return vars
}

var colourRE = regexp.MustCompile(`var\((--[a-z-]+)\)|#[0-9a-fA-F]{6}\b`)

// colour returns the #rrggbb the last rule for selector gives property
// (a shorthand such as border holds it among other values); it reports an
// error and false when there is none.
func (ss *stylesheet) colour(t *testing.T, vars map[string]string, selector, property string) (string, bool) {
	t.Helper()
	value := ""
	for _, r := range ss.top {
		for _, s := range r.selectors {
			if v, ok := r.decls[property]; ok && s == selector {
				value = v
			}
		}
	}
	m := colourRE.FindStringSubmatch(value)
	switch {
	case value == "":
		t.Errorf("latch.css: no %s for %q", property, selector)
		return "", false
	case m == nil:
		t.Errorf("latch.css: %s of %q is %q, not a #rrggbb colour or a var()", property, selector, value)
		return "", false
	case m[1] != "":
		c, ok := vars[m[1]]
		if !ok || !hexColourRE.MatchString(c) {
			t.Errorf("latch.css: %s is %q, not a #rrggbb colour", m[1], c)
			return "", false
		}
		return strings.ToLower(c), true
	}
	return strings.ToLower(m[0]), true
}

var hexColourRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
