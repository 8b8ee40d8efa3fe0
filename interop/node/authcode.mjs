// authcode.mjs: the authorization code flow of latch with openid-client,
// the way a Node.js web application runs it. Run by
// cmd/latch/authcode_interop_test.go, which plays the user's browser.
//
// Environment: ISSUER, CLIENT_ID, REDIRECT_URI, CLIENT_SECRET (empty or
// unset: a public client, token_endpoint_auth_method none), SCOPE
// (default "openid profile read"), EXPECTED_USERNAME (default alice).
//
// Protocol, one JSON object per line on stdout:
//   1. {"check":"authorization-url","ok":true,"authorization_url":...}
//      The caller opens that URL in a browser, signs in, and writes the URL
//      the browser was redirected to (the redirect URI with code, state and
//      iss) as one line on stdin.
//   2. One line per check that passes, then
//      {"check":"all","ok":true,...} and exit 0.
// The first failure prints {"check":...,"ok":false,"error":...} and exits 1.

import * as client from 'openid-client';
import { assert, env, fail, pass, readLine, run, version } from './report.mjs';

const ISSUER = env('ISSUER');
const CLIENT_ID = env('CLIENT_ID');
const REDIRECT_URI = env('REDIRECT_URI');
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? '';
const SCOPE = env('SCOPE', 'openid profile read');
const EXPECTED_USERNAME = env('EXPECTED_USERNAME', 'alice');

// As in check.mjs: the dev server is http://127.0.0.1, which openid-client
// v6 refuses unless allowInsecureRequests is applied (its documented
// escape hatch for local development). Nothing else is relaxed.
const insecureDev = { execute: [client.allowInsecureRequests] };

async function main() {
  const publicClient = CLIENT_SECRET === '';
  const auth = publicClient ? client.None() : client.ClientSecretBasic(CLIENT_SECRET);

  let config;
  await run('discovery', async () => {
    config = await client.discovery(new URL(ISSUER), CLIENT_ID, publicClient ? undefined : CLIENT_SECRET, auth, insecureDev);
    const md = config.serverMetadata();
    assert(md.issuer === ISSUER, `issuer ${md.issuer}, want ${ISSUER}`);
    assert(md.supportsPKCE('S256'), 'code_challenge_methods_supported lacks S256');
    assert(md.authorization_response_iss_parameter_supported === true, 'authorization_response_iss_parameter_supported is not true (RFC 9207)');
    for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) {
      assert(typeof md[k] === 'string' && md[k] !== '', `discovery metadata lacks ${k}`);
    }
    return { authorization_endpoint: md.authorization_endpoint, public_client: publicClient };
  });

  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  pass('authorization-url', { authorization_url: authorizationUrl.href });

  let callback;
  try {
    callback = new URL(await readLine());
  } catch (err) {
    fail('callback-url', err);
  }

  // authorizationCodeGrant checks state and, since the server advertises
  // RFC 9207, iss in the response; then redeems the code with the
  // verifier and validates the ID token's iss, aud, exp, iat and nonce.
  let tokens, sub;
  await run('authorization_code', async () => {
    tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    assert(typeof tokens.access_token === 'string' && tokens.access_token !== '', 'no access_token');
    assert(tokens.token_type === 'bearer', `token_type ${tokens.token_type}, want bearer (case-insensitive)`);
    assert(typeof tokens.refresh_token === 'string' && tokens.refresh_token.startsWith('lt_rt_'), 'no lt_rt_ refresh_token');
    const claims = tokens.claims();
    assert(claims !== undefined, 'no id_token');
    assert(claims.nonce === nonce, `nonce ${claims.nonce}, want ${nonce}`);
    assert(typeof claims.auth_time === 'number' && claims.auth_time > 0, `auth_time ${claims.auth_time}`);
    assert(typeof claims.sid === 'string' && claims.sid !== '', 'no sid');
    assert(claims.azp === CLIENT_ID, `azp ${claims.azp}, want ${CLIENT_ID}`);
    assert(claims.preferred_username === EXPECTED_USERNAME, `preferred_username ${claims.preferred_username}`);
    sub = claims.sub;
    return { sub, scope: tokens.scope, claims: Object.keys(claims).sort() };
  });

  let refreshed;
  await run('refresh_token', async () => {
    refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert(typeof refreshed.refresh_token === 'string' && refreshed.refresh_token.startsWith('lt_rt_'), 'no new refresh_token');
    assert(refreshed.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
    assert(refreshed.access_token !== tokens.access_token, 'the access token was not renewed');
    const claims = refreshed.claims();
    if (claims !== undefined) {
      assert(claims.sub === sub, `refreshed ID token sub ${claims.sub}, want ${sub}`);
      assert(claims.auth_time === tokens.claims().auth_time, 'refreshed ID token changed auth_time');
    }
    return { rotated: true, id_token: claims !== undefined };
  });

  let userinfo;
  await run('userinfo', async () => {
    userinfo = await client.fetchUserInfo(config, refreshed.access_token, sub);
    assert(userinfo.preferred_username === EXPECTED_USERNAME, `preferred_username ${userinfo.preferred_username}, want ${EXPECTED_USERNAME}`);
    return { sub: userinfo.sub, preferred_username: userinfo.preferred_username };
  });

  // The tokens are for the caller to cross-check with the server (they
  // come from a throwaway test server).
  pass('all', {
    sub,
    preferred_username: userinfo.preferred_username,
    first_refresh_token: tokens.refresh_token,
    refresh_token: refreshed.refresh_token,
    access_token: refreshed.access_token,
    versions: { node: process.version, 'openid-client': version('openid-client') },
  });
}

main().then(
  () => process.exit(0),
  (err) => fail('main', err),
);
