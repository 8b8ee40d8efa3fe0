package main

import (
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set by a release build:
//
//	go build -trimpath -ldflags "-X main.version=v1.2.3" ./cmd/latch
//
// Without it, the module version from the build info is used: the tag
// for `go install ...@v1.2.3`, (devel) for a build in a checkout.
var version string

// buildVersion is what `latch --version` prints: the version, then the VCS
// revision and time the binary was built from, when Go recorded them (a
// build in a git checkout), "+dirty" for uncommitted changes.
func buildVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return cmpOr(v, "(unknown)")
	}
	v = cmpOr(v, info.Main.Version, "(devel)")
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	parts := []string{v}
	if rev != "" {
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, "revision "+rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	parts = append(parts, info.GoVersion)
	return strings.Join(parts, ", ")
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// plainBool is a bool flag's value without IsBoolFlag, which pflag 1.1
// takes as a reason to print every boolean as --dev[=true|false]. The
// flag still takes no argument: NoOptDefVal ("true") does that.
type plainBool struct{ pflag.Value }

// tidyHelp adds the help and version flags cobra would add on execution,
// so that they too print as --help, and makes every bool flag plainBool.
func tidyHelp(c *cobra.Command) {
	c.InitDefaultHelpFlag()
	c.InitDefaultVersionFlag()
	plain := func(f *pflag.Flag) {
		if _, ok := f.Value.(plainBool); !ok && f.Value.Type() == "bool" {
			f.Value = plainBool{f.Value}
		}
	}
	c.Flags().VisitAll(plain)
	c.PersistentFlags().VisitAll(plain)
	for _, sub := range c.Commands() {
		tidyHelp(sub)
	}
}
