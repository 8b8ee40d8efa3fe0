// The whole client side of the BFF pattern: plain fetch, same origin, no
// token anywhere. The session cookie goes along by itself (it is HttpOnly:
// this script cannot read it). State-changing requests carry the header
// X-Latch-CSRF: 1, which the BFF requires.
"use strict";

const $ = (id) => document.getElementById(id);

function show(signedIn, user) {
  $("anonymous").hidden = signedIn;
  $("signed-in").hidden = !signedIn;
  $("user").textContent = user ? (user.name || user.preferred_username || user.sub) : "";
}

// loginRequired handles the BFF's 401 answers: login_required (no session,
// or it timed out) and session_revoked (logged out everywhere at the
// server). Either way the user logs in again.
function loginRequired(body) {
  show(false);
  $("status").textContent = body.error === "session_revoked"
    ? "Your session was ended at the server. Please log in again."
    : "Please log in.";
}

async function load() {
  const resp = await fetch("/bff/user");
  if (resp.status === 401) {
    loginRequired(await resp.json());
    return;
  }
  if (!resp.ok) {
    $("status").textContent = "The BFF answered " + resp.status;
    return;
  }
  show(true, await resp.json());
}

$("call").addEventListener("click", async () => {
  const resp = await fetch("/api/hello");
  const body = await resp.json().catch(() => ({}));
  if (resp.status === 401 && body.error) {
    loginRequired(body);
    return;
  }
  $("status").textContent = "API answered " + resp.status;
  $("result").textContent = JSON.stringify(body, null, 2);
});

$("logout").addEventListener("click", async () => {
  const resp = await fetch("/bff/logout", { method: "POST", headers: { "X-Latch-CSRF": "1" } });
  const body = await resp.json().catch(() => ({}));
  $("result").textContent = "";
  $("status").textContent = resp.ok ? "Logged out." : "Logout failed: " + resp.status;
  show(false);
  // To end the login at the authorization server as well, follow
  // body.end_session_url when it is present:
  //   if (body.end_session_url) location.assign(body.end_session_url);
});

load();
