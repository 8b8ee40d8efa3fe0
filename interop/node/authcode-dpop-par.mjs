// authcode-dpop-par.mjs: the authorization code flow with PKCE, a pushed
// authorization request (PAR, RFC 9126) and DPoP-bound tokens (RFC 9449),
// all made by openid-client, then a DPoP-bound call to a resource server.
// Run by cmd/latch/authcode_dpop_interop_test.go, which plays the user's
// browser in headless Chromium and runs examples/api --dpop.
//
// Environment: ISSUER, CLIENT_ID, REDIRECT_URI, API_URL (examples/api's
// /hello), CLIENT_SECRET (empty or unset: a public client, auth method
// none), SCOPE (default "openid profile read"), EXPECTED_USERNAME (default
// alice).
//
// Protocol (report.mjs): {"check":"authorization-url",...} with the URL
// to open, whose only parameters are client_id and request_uri; the caller
// writes the URL the browser was redirected to as one line on stdin; then
// one line per check and {"check":"all",...}.

import * as client from 'openid-client';
import * as jose from 'jose';
import { assert, env, fail, pass, readLine, run, version } from './report.mjs';

const ISSUER = env('ISSUER');
const CLIENT_ID = env('CLIENT_ID');
const REDIRECT_URI = env('REDIRECT_URI');
const API_URL = env('API_URL');
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? '';
const SCOPE = env('SCOPE', 'openid profile read');
const EXPECTED_USERNAME = env('EXPECTED_USERNAME', 'alice');

// As in authcode.mjs: plain http on loopback needs openid-client's
// documented escape hatch; nothing else is relaxed.
const insecureDev = { execute: [client.allowInsecureRequests] };

// claims decodes a JWT access token's payload (the token came from the
// token endpoint; its signature is the resource server's business).
function claims(jwt) {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  return jose.decodeJwt(jwt);
}

// refused calls the API with the token as the given DPoP handle (none:
// Bearer) and returns the challenge of its 401.
async function refused(config, accessToken, DPoP) {
  try {
    const res = await client.fetchProtectedResource(config, accessToken, new URL(API_URL), 'GET', undefined, undefined, DPoP ? { DPoP } : undefined);
    throw new Error(`the API answered ${res.status}, want 401`);
  } catch (err) {
    if (!(err instanceof client.WWWAuthenticateChallengeError) && err?.code !== 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') throw err;
    assert(err.status === 401, `status ${err.status}, want 401`);
    const c = err.cause?.[0];
    return { scheme: c?.scheme, error: c?.parameters?.error };
  }
}

async function main() {
  const publicClient = CLIENT_SECRET === '';
  const auth = publicClient ? client.None() : client.ClientSecretBasic(CLIENT_SECRET);

  let config;
  await run('discovery', async () => {
    config = await client.discovery(new URL(ISSUER), CLIENT_ID, publicClient ? undefined : CLIENT_SECRET, auth, insecureDev);
    const md = config.serverMetadata();
    assert(md.issuer === ISSUER, `issuer ${md.issuer}, want ${ISSUER}`);
    assert(md.supportsPKCE('S256'), 'code_challenge_methods_supported lacks S256');
    assert(typeof md.pushed_authorization_request_endpoint === 'string', 'no pushed_authorization_request_endpoint (RFC 9126 §5)');
    assert(Array.isArray(md.dpop_signing_alg_values_supported) && md.dpop_signing_alg_values_supported.includes('ES256'),
      `dpop_signing_alg_values_supported ${JSON.stringify(md.dpop_signing_alg_values_supported)} lacks ES256 (RFC 9449 §5.1)`);
    return {
      pushed_authorization_request_endpoint: md.pushed_authorization_request_endpoint,
      require_pushed_authorization_requests: md.require_pushed_authorization_requests ?? false,
      dpop_signing_alg_values_supported: md.dpop_signing_alg_values_supported,
      public_client: publicClient,
    };
  });

  // The client's DPoP key, made and held by openid-client; the handle
  // signs every proof and follows the server's nonces.
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey), 'sha256');

  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  let authorizationUrl;
  await run('par', async () => {
    // With the DPoP option the push carries a proof, which binds the
    // code to the key (RFC 9449 §10.1).
    authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    }, { DPoP });
    const q = authorizationUrl.searchParams;
    assert(q.get('client_id') === CLIENT_ID, `client_id ${q.get('client_id')}`);
    assert((q.get('request_uri') ?? '').startsWith('urn:ietf:params:oauth:request_uri:'), `request_uri ${q.get('request_uri')} (RFC 9126 §2.2)`);
    assert([...q.keys()].sort().join(',') === 'client_id,request_uri', `the front channel carries ${[...q.keys()]}, want only client_id and request_uri`);
    return { request_uri: q.get('request_uri') };
  });
  pass('authorization-url', { authorization_url: authorizationUrl.href });

  let callback;
  try {
    callback = new URL(await readLine());
  } catch (err) {
    fail('callback-url', err);
  }

  let tokens, sub;
  await run('authorization_code', async () => {
    tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
    }, undefined, { DPoP });
    assert(tokens.token_type === 'dpop', `token_type ${tokens.token_type}, want DPoP (RFC 9449 §5)`);
    const at = claims(tokens.access_token);
    if (at !== undefined) {
      assert(at.cnf?.jkt === jkt, `the access token's cnf.jkt ${at.cnf?.jkt}, want the key's thumbprint ${jkt} (RFC 9449 §6.1)`);
    }
    const id = tokens.claims();
    assert(id?.nonce === nonce, `ID token nonce ${id?.nonce}, want ${nonce}`);
    assert(id.preferred_username === EXPECTED_USERNAME, `preferred_username ${id.preferred_username}`);
    sub = id.sub;
    return { sub, token_type: tokens.token_type, jwt: at !== undefined, jkt };
  });

  let refreshed;
  await run('refresh_token', async () => {
    refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
    assert(refreshed.token_type === 'dpop', `refreshed token_type ${refreshed.token_type}, want DPoP`);
    assert(refreshed.access_token !== tokens.access_token, 'the access token was not renewed');
    const at = claims(refreshed.access_token);
    if (at !== undefined) {
      assert(at.cnf?.jkt === jkt, `refreshed cnf.jkt ${at.cnf?.jkt}, want ${jkt}`);
    }
    return { rotated: refreshed.refresh_token !== tokens.refresh_token };
  });

  if (publicClient) {
    // A public client's refresh token is bound to its key (RFC 9449 §5):
    // another key cannot spend it.
    await run('refresh_token-other-key-refused', async () => {
      const other = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
      try {
        await client.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: other });
      } catch (err) {
        assert(err.error === 'invalid_grant' || err.error === 'invalid_dpop_proof', `refused with ${err.error}, want invalid_grant or invalid_dpop_proof`);
        return { error: err.error };
      }
      throw new Error('a refresh with another key was accepted');
    });
  }

  let hello;
  await run('api', async () => {
    const res = await client.fetchProtectedResource(config, refreshed.access_token, new URL(API_URL), 'GET', undefined, undefined, { DPoP });
    assert(res.status === 200, `the API answered ${res.status}`);
    hello = await res.json();
    assert(hello.sub === sub, `the API saw sub ${hello.sub}, want ${sub}`);
    return hello;
  });

  await run('api-bearer-refused', async () => {
    const c = await refused(config, refreshed.access_token, undefined);
    return c;
  });

  await run('api-other-key-refused', async () => {
    const other = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const c = await refused(config, refreshed.access_token, other);
    assert(c.scheme === 'dpop', `challenge scheme ${c.scheme}, want DPoP`);
    return c;
  });

  let userinfo;
  await run('userinfo', async () => {
    userinfo = await client.fetchUserInfo(config, refreshed.access_token, sub, { DPoP });
    assert(userinfo.preferred_username === EXPECTED_USERNAME, `preferred_username ${userinfo.preferred_username}`);
    return { sub: userinfo.sub };
  });

  pass('all', {
    sub,
    jkt,
    access_token: refreshed.access_token,
    versions: { node: process.version, 'openid-client': version('openid-client'), jose: version('jose') },
  });
}

main().then(
  () => process.exit(0),
  (err) => fail('main', err),
);
