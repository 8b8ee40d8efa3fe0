package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeInterop returns node and the absolute interop/node directory with
// pkg installed, or skips, unless LATCH_TEST_NODE=1 (as in CI), where a
// missing node or `npm ci` is a failure.
func nodeInterop(t *testing.T, pkg string) (node, dir string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("LATCH_TEST_NODE") == "1" {
			t.Fatalf("LATCH_TEST_NODE=1 but "+format, args...)
		}
		t.Skipf(format+" (set LATCH_TEST_NODE=1 to make this a failure)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH: %v", err)
	}
	dir, err = filepath.Abs(interopNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		unavailable("npm package %s is not installed in %s (run `npm ci` there): %v", pkg, dir, err)
	}
	return node, dir
}

// nodeLine is one line of an interop script's report (interop/node/report.mjs).
type nodeLine struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Raw   []byte `json:"-"`
}

// nodeFlow is an interop script that reports one JSON line per check and
// may read lines on stdin (a callback URL).
type nodeFlow struct {
	t          testing.TB
	name       string
	cmd        *exec.Cmd
	ctx        context.Context
	cancel     context.CancelFunc
	stdin      io.WriteCloser
	stderr     *syncBuffer
	transcript strings.Builder // written by the reader until readDone
	lines      chan nodeLine
	readDone   chan struct{}
	waited     bool
	waitErr    error
	// context is added to failure messages (e.g. the server's log).
	context func() string
}

// startNodeFlow runs `node script` in dir with env, under a 90s hang
// guard; it is killed at cleanup if still running.
func startNodeFlow(t testing.TB, node, dir, script string, env []string, context func() string) *nodeFlow {
	t.Helper()
	ctx, cancel := contextWithTimeout(90 * time.Second)
	f := &nodeFlow{t: t, name: script, ctx: ctx, cancel: cancel, stderr: &syncBuffer{},
		lines: make(chan nodeLine, 64), readDone: make(chan struct{}), context: context}
	f.cmd = exec.CommandContext(ctx, node, script)
	f.cmd.Dir = dir
	f.cmd.Env = append(cleanEnv(), env...)
	f.cmd.WaitDelay = 5 * time.Second
	var err error
	if f.stdin, err = f.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		defer close(f.readDone)
		defer close(f.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f.transcript.WriteString(sc.Text() + "\n")
			var l nodeLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = nodeLine{Check: "stdout", Error: "not JSON: " + sc.Text()}
			}
			l.Raw = append([]byte(nil), sc.Bytes()...)
			select {
			case f.lines <- l:
			case <-ctx.Done(): // the test gave up: read on to EOF
			}
		}
	}()
	t.Cleanup(func() {
		cancel() // kills node if it is still running
		f.stdin.Close()
		f.wait()
	})
	return f
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func (f *nodeFlow) wait() error {
	if !f.waited {
		<-f.readDone // every line read before Wait closes the pipe
		f.waitErr, f.waited = f.cmd.Wait(), true
	}
	return f.waitErr
}

// report stops node if it still runs and returns what everyone said.
func (f *nodeFlow) report() string {
	f.cancel()
	<-f.readDone
	s := "node stdout:\n" + f.transcript.String() + "node stderr:\n" + f.stderr.String()
	if f.context != nil {
		s += f.context()
	}
	return s
}

// next returns the line of check want, decoded into v when v is not nil,
// failing on a failed check, or on node's exit (or the hang guard's kill)
// before it comes.
func (f *nodeFlow) next(want string, v any) {
	f.t.Helper()
	for l := range f.lines {
		if !l.OK {
			f.t.Fatalf("node %s failed at %s: %s\n%s", f.name, l.Check, l.Error, f.report())
		}
		if l.Check != want {
			continue
		}
		if v != nil {
			if err := json.Unmarshal(l.Raw, v); err != nil {
				f.t.Fatalf("node %s: line %s: %v", f.name, l.Raw, err)
			}
		}
		return
	}
	err := f.wait()
	if errors.Is(f.ctx.Err(), context.DeadlineExceeded) {
		f.t.Fatalf("node %s did not print %q within its 90s hang guard\n%s", f.name, want, f.report())
	}
	f.t.Fatalf("node %s ended (%v) without printing %q\n%s", f.name, err, want, f.report())
}

// send writes line to node's stdin and closes it.
func (f *nodeFlow) send(line string) {
	f.t.Helper()
	if _, err := io.WriteString(f.stdin, line+"\n"); err != nil {
		f.t.Fatalf("writing to node %s: %v\n%s", f.name, err, f.report())
	}
	f.stdin.Close()
}

// finish waits for node to exit 0 after its last line and logs the
// transcript.
func (f *nodeFlow) finish() {
	f.t.Helper()
	if err := f.wait(); err != nil {
		f.t.Fatalf("node %s: %v after reporting success\n%s", f.name, err, f.report())
	}
	f.t.Logf("node %s:\n%s", f.name, f.transcript.String())
}
