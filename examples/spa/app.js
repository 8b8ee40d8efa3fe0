// The whole client side of the BFF pattern: plain fetch, same origin, no
// token anywhere. The session cookie goes along by itself (it is HttpOnly:
// this script cannot read it). State-changing requests carry the header
// X-Latch-CSRF: 1, which the BFF requires.
"use strict";

const $ = (id) => document.getElementById(id);

// The page is in one state at a time: loading, signed-out or signed-in.
// Anything shown for a session (the user, the last API answer) goes when
// the session does.
function setState(state, user) {
  $("loading").hidden = state !== "loading";
  $("anonymous").hidden = state !== "signed-out";
  $("signed-in").hidden = state !== "signed-in";
  $("user").textContent = user ? (user.name || user.preferred_username || user.sub) : "";
  if (state !== "signed-in") {
    clearResult();
  }
}

function clearResult() {
  $("result").textContent = "";
  $("result-status").textContent = "";
  $("result-box").hidden = true;
}

// say shows one message in the status line; warn marks it as something
// that went wrong.
function say(text, warn) {
  $("status").textContent = text;
  $("status").className = warn ? "warn" : "";
}

// signedOut handles the BFF's 401 answers: login_required (no session, or
// it timed out) and session_revoked (signed out everywhere at the server).
function signedOut(body, during) {
  setState("signed-out");
  if (body.error === "session_revoked") {
    say("Your session was ended at the server, so you are signed out here too.", true);
  } else if (during) {
    say("Your session has expired.", true);
  } else {
    say("");
  }
}

async function load() {
  let resp;
  try {
    resp = await fetch("/bff/user");
  } catch (e) {
    say("The BFF could not be reached. Reload the page to try again.", true);
    return;
  }
  if (resp.status === 401) {
    signedOut(await resp.json().catch(() => ({})), false);
    return;
  }
  if (!resp.ok) {
    say("The BFF answered " + resp.status + ". Reload the page to try again.", true);
    return;
  }
  say("");
  setState("signed-in", await resp.json());
}

$("call").addEventListener("click", async () => {
  const button = $("call");
  button.disabled = true;
  say("");
  try {
    const resp = await fetch("/api/hello");
    const body = await resp.json().catch(() => ({}));
    if (resp.status === 401 && body.error) {
      signedOut(body, true);
      return;
    }
    $("result-status").textContent = resp.status + (resp.ok ? " OK" : "");
    $("result").textContent = JSON.stringify(body, null, 2);
    $("result-box").hidden = false;
  } catch (e) {
    say("The API could not be reached. Try again.", true);
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  const resp = await fetch("/bff/logout", { method: "POST", headers: { "X-Latch-CSRF": "1" } })
    .catch(() => null);
  if (!resp || !resp.ok) {
    say("Signing out failed" + (resp ? " (the BFF answered " + resp.status + ")" : "") + ". Try again.", true);
    return;
  }
  setState("signed-out");
  say("You have signed out.");
  // To end the login at the authorization server as well, follow
  // end_session_url when the BFF's answer has one:
  //   const body = await resp.json();
  //   if (body.end_session_url) location.assign(body.end_session_url);
});

load();
