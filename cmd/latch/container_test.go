package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestContainerfile_IsSafeAndCurrent reads the Containerfile (no image is
// built here: the machine may have no container daemon or network): a Go
// image of the Go version go.mod names, a distroless or scratch base, a non-root
// user, the /data volume as the data directory, latch serve as the
// entrypoint, and run examples whose flags exist.
func TestContainerfile_IsSafeAndCurrent(t *testing.T) {
	b, err := os.ReadFile("../../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	cf := string(b)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(string(mod))
	if goVersion == nil || !strings.Contains(cf, "golang:"+goVersion[1]+" AS build") {
		t.Errorf("the build stage is not golang:%v", goVersion)
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static",
		"USER 65532:65532",
		"VOLUME /data",
		"LATCH_DATA_DIR=/data",
		`ENTRYPOINT ["/usr/local/bin/latch", "serve"]`,
		"CGO_ENABLED=0 go build -trimpath",
		"-X main.version=",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Containerfile lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^USER (root|0)\b`).MatchString(cf) {
		t.Error("Containerfile runs as root")
	}
	// The documented runs pass serve flags that exist.
	serve, _, err := newRoot(&env{getenv: func(string) string { return "" }}).Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, m := range regexp.MustCompile(`(?m)\brun [^\n]* latch ([^\n]*)$`).FindAllStringSubmatch(cf, -1) {
		runs++
		for _, arg := range strings.Fields(m[1]) {
			if strings.HasPrefix(arg, "--") && serve.Flags().Lookup(strings.TrimPrefix(arg, "--")) == nil {
				t.Errorf("Containerfile runs `latch serve ... %s`: no such flag", arg)
			}
		}
	}
	if runs < 2 {
		t.Errorf("Containerfile shows %d run commands, want the development and the production one", runs)
	}
}
