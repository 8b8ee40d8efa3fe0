package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// env is the process environment a command runs in, injected for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// applyConfig fills every flag the user did not set on the command line,
// in one precedence order for all of them:
//
//	command-line flag > LATCH_<FLAG> environment variable > config file > default
//
// The environment variable of --data-dir is LATCH_DATA_DIR; the config file
// key is data_dir (or data-dir). The file is --config or LATCH_CONFIG.
func applyConfig(cmd *cobra.Command, e *env) error {
	fs := cmd.Flags()
	path, _ := fs.GetString("config")
	if !fs.Changed("config") {
		path = e.getenv("LATCH_CONFIG")
	}
	file := map[string]any{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config: %s is not valid YAML: %s", path, yamlMessage(err))
		}
		var unknown []string
		for k := range file {
			name := strings.ReplaceAll(k, "_", "-")
			if f := fs.Lookup(name); f == nil || name == "config" {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config: %s: unknown setting(s) %s for `latch %s`", path, strings.Join(unknown, ", "), cmd.Name())
		}
	}
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" || firstErr != nil {
			return
		}
		key := strings.ReplaceAll(f.Name, "-", "_")
		if v, ok := lookupEnv(e, "LATCH_"+strings.ToUpper(key)); ok {
			if err := setFlag(fs, f, v); err != nil {
				firstErr = fmt.Errorf("environment LATCH_%s: %w", strings.ToUpper(key), err)
			}
			return
		}
		v, ok := file[key]
		if !ok {
			v, ok = file[f.Name]
		}
		if ok {
			if err := setFlag(fs, f, yamlString(v)); err != nil {
				firstErr = fmt.Errorf("config %s: %s: %w", path, key, err)
			}
		}
	})
	return firstErr
}

// yamlParserProblems are the messages of go-yaml's parser (not its
// scanner) errors. go-yaml reports their line 0-based, one before the line
// a user sees in an editor (its scanner errors are 1-based): yamlMessage
// adds the one. TestConfig_YAMLErrorNamesTheRightLine pins this.
var yamlParserProblems = []string{
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlMessage is err's message with the line of the file it names.
func yamlMessage(err error) string {
	msg := err.Error()
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil || !slices.Contains(yamlParserProblems, m[2]) {
		return msg
	}
	n, _ := strconv.Atoi(m[1])
	return fmt.Sprintf("yaml: line %d: %s", n+1, m[2])
}

func lookupEnv(e *env, name string) (string, bool) {
	v := e.getenv(name)
	return v, v != ""
}

// setFlag sets f from a string. List flags take comma-separated values.
func setFlag(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(splitList(v))
	}
	return fs.Set(f.Name, v)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// yamlString renders a YAML scalar or list as the flag syntax.
func yamlString(v any) string {
	switch t := v.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, p := range t {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v)
	}
}

// dataPaths are the files of a data directory.
type dataPaths struct{ dir, db, kek string }

func paths(dir string) dataPaths {
	return dataPaths{dir: dir, db: filepath.Join(dir, "latch.db"), kek: filepath.Join(dir, "kek")}
}
