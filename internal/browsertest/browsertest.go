// Package browsertest starts the headless Chromium that latch's browser
// tests drive (login form, cookies, the BFF, relying parties), the same way
// in every package: found on PATH, no sandbox (tests run as root in CI), no
// background networking (this machine's closed network refuses it), stopped
// at the test's cleanup. It imports chromedp and nothing of latch.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start starts Chromium for t and returns its chromedp context, which ends
// after guard (a hang guard for the whole test, not a timing assertion;
// 0: none) or at cleanup. Without chromium on PATH the test is skipped,
// or fails when LATCH_TEST_BROWSER=1 (as in CI); what names the test's
// need in the skip message.
func Start(t testing.TB, what string, guard time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LATCH_TEST_BROWSER") == "1" {
			t.Fatalf("LATCH_TEST_BROWSER=1 but chromium is not on PATH: %v", err)
		}
		t.Skipf("chromium is not on PATH: %s needs it (Debian: apt-get install chromium; .ci/run installs it) (set LATCH_TEST_BROWSER=1 to make this a failure)", what)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-background-networking", true),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // ends the browser process
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	if guard > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, guard)
		t.Cleanup(cancel)
	}
	// The first Run starts the browser.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
