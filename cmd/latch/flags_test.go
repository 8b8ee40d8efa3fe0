package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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

// TestHelp_FlagsReadAsTheyAreTyped: no --help of any command shows a
// boolean as --dev[=true|false], and the commands that only read keys do
// not offer the flags that shape new ones.
func TestHelp_FlagsReadAsTheyAreTyped(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk(newRoot(&env{getenv: func(string) string { return "" }}), nil)
	help := map[string]string{}
	for _, path := range paths {
		var stdout, stderr strings.Builder
		if code := Main(context.Background(), append(path, "--help"), strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("latch %v --help: exit %d %s", path, code, stderr.String())
		}
		out := stdout.String()
		help[strings.Join(path, " ")] = out
		if strings.Contains(out, "[=true|false]") {
			t.Errorf("latch %s --help shows [=true|false]:\n%s", strings.Join(path, " "), out)
		}
	}
	if !strings.Contains(help["serve"], "      --dev ") || !strings.Contains(help["serve"], "  -h, --help ") {
		t.Errorf("serve --help:\n%s", help["serve"])
	}
	for _, cmd := range []string{"keys list", "keys retire", "token inspect", "token revoke", "token issue"} {
		for _, flag := range []string{"--signing-alg", "--key-prepublish"} {
			if strings.Contains(help[cmd], flag) {
				t.Errorf("latch %s --help offers %s, which does nothing there", cmd, flag)
			}
		}
	}
	if !strings.Contains(help["keys rotate"], "--key-prepublish") {
		t.Error("keys rotate lost --key-prepublish")
	}
}

// TestVersion_PrintsTheStampedVersion: latch --version prints the version
// a release build stamps, and the Go version, from the build info.
func TestVersion_PrintsTheStampedVersion(t *testing.T) {
	out, stderr, code := runCLICode(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(out, "latch ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: exit %d %q %q", code, out, stderr)
	}
	bin := filepath.Join(t.TempDir(), "latch")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("release build: %v\n%s", err, b)
	}
	b, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(b), "latch v9.8.7-test, ") {
		t.Fatalf("stamped --version: %q %v", b, err)
	}
}

// TestDevListen_AllInterfacesOnlyWhenAskedByName: --dev stays on loopback
// unless --insecure-dev-listen-all says otherwise (a container), and that
// flag means nothing without --dev.
func TestDevListen_AllInterfacesOnlyWhenAskedByName(t *testing.T) {
	for _, tc := range []struct {
		s    serveFlags
		want string // "" for allowed
	}{
		{serveFlags{dev: true, listen: "127.0.0.1:8080"}, ""},
		{serveFlags{dev: true, listen: "[::1]:8080"}, ""},
		{serveFlags{dev: true, listen: ":8080"}, "--insecure-dev-listen-all"},
		{serveFlags{dev: true, listen: "0.0.0.0:8080"}, "--insecure-dev-listen-all"},
		{serveFlags{dev: true, devListenAll: true, listen: ":8080"}, ""},
		{serveFlags{dev: true, devListenAll: true, listen: "0.0.0.0:8080"}, ""},
		{serveFlags{devListenAll: true, listen: ":8080"}, "for --dev only"},
		{serveFlags{listen: ":8080"}, ""},
	} {
		err := checkDevListen(&tc.s)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("dev=%v listen-all=%v --listen %s: %v, want %q", tc.s.dev, tc.s.devListenAll, tc.s.listen, err, tc.want)
		}
	}
}

func TestDevIssuer(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"[::1]:8080":     "http://[::1]:8080",
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:9000":      "http://127.0.0.1:9000",
	} {
		if got := devIssuer(addr); got != want {
			t.Errorf("devIssuer(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestServe_DevOnAllInterfacesNamesTheFlag: the refusal says how to run
// --dev in a container, and nothing is bound or created.
func TestServe_DevOnAllInterfacesNamesTheFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, stderr, code := runCLICode(t, []string{"LATCH_LISTEN=:0"}, "serve", "--dev", "--data-dir", dir)
	if code != 2 || !strings.Contains(stderr, "--insecure-dev-listen-all") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused start created %s", dir)
	}
}
