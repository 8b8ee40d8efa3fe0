package bff

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/internal/latchtest"
)

// TestBrowser_ExampleSPA_OneClearStateAtATime drives examples/spa through
// the BFF in Chromium and checks what the user sees: signed out, one
// invitation to sign in; signed in, the user and no empty result box; an
// API answer; then, the session ended at the server (logout everywhere),
// the next call shows why and the last API answer is gone. It keeps a
// screenshot of each state as a test artefact.
func TestBrowser_ExampleSPA_OneClearStateAtATime(t *testing.T) {
	e := newE2E(t, e2eOptions{issuerHost: "localhost"})
	ctx := newBrowser(t)
	run := func(step string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var loc string
			chromedp.Run(ctx, chromedp.Location(&loc))
			t.Fatalf("%s (at %s): %v", step, loc, err)
		}
	}
	// visible lists which of the page's parts are shown.
	visible := func() string {
		t.Helper()
		var v []string
		run("read the page", chromedp.Evaluate(`["loading", "anonymous", "signed-in", "result-box", "status"].filter(id => {
			const el = document.getElementById(id);
			return el && el.getClientRects().length > 0;
		})`, &v))
		return strings.Join(v, " ")
	}
	shot := func(name string) {
		t.Helper()
		var png []byte
		run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
		latchtest.SaveArtefact(t, name+".png", png)
	}
	run("open the app signed out", chromedp.EmulateViewport(640, 320),
		chromedp.Navigate(e.bffURL+"/"), chromedp.WaitVisible("#login", chromedp.ByID))
	if got := visible(); got != "anonymous" {
		t.Errorf("signed out, the page shows %q, want only the sign-in invitation", got)
	}
	shot("example-signed-out")

	run("sign in",
		chromedp.Click("#login", chromedp.ByID),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#signed-in", chromedp.ByID),
	)
	var user string
	run("read the user", chromedp.Text("#user", &user, chromedp.ByID))
	if got := visible(); got != "signed-in" || user != "alice" {
		t.Errorf("signed in, the page shows %q for %q, want only the signed-in part for alice", got, user)
	}
	shot("example-signed-in")
	run("call the API",
		chromedp.Click("#call", chromedp.ByID),
		chromedp.WaitVisible(`//pre[@id="result" and contains(., "sub")]`, chromedp.BySearch),
	)
	if got := visible(); got != "signed-in result-box" {
		t.Errorf("after the API call the page shows %q", got)
	}
	shot("example-api-result")

	// The session ends at the server; the app learns it at its next call.
	if _, err := e.users.LogoutEverywhere(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	var status string
	waitFor(t, 10*time.Second, "the app's next call answered session_revoked", func() bool {
		// Click only while the button is shown: the answer to an earlier
		// click may have signed the page out meanwhile.
		run("call the API again", chromedp.Evaluate(`(() => {
			if (!document.getElementById("signed-in").hidden) document.getElementById("call").click();
			return document.getElementById("status").textContent;
		})()`, &status))
		return strings.Contains(status, "ended")
	})
	var result string
	run("read the result", chromedp.Text("#result", &result, chromedp.ByID))
	if got := visible(); got != "anonymous status" || result != "" {
		t.Errorf("after the session ended, the page shows %q and the API answer %q; want the sign-in invitation and the reason, no API answer", got, result)
	}
	shot("example-session-ended")
}
