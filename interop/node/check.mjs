// Interoperability check of a running latch server against two npm clients
// that latch did not write: openid-client (OAuth 2 / OIDC relying party, by
// way of oauth4webapi) and jose (JWT verification against a remote JWKS).
//
// Run by cmd/latch/interop_test.go; by hand:
//
//   ISSUER=http://127.0.0.1:PORT CLIENT_ID=dev CLIENT_SECRET=... \
//   OPAQUE_CLIENT_ID=... OPAQUE_CLIENT_SECRET=... node check.mjs
//
// CLIENT_* is a JWT-format client (the dev client: audience dev-api, scope
// read, client_secret_basic). OPAQUE_CLIENT_* is an opaque-format client;
// OPAQUE_CLIENT_AUTH_METHOD (client_secret_basic or client_secret_post,
// default client_secret_basic) says how it authenticates, and JWT_AUDIENCE
// (default dev-api) is the audience the JWT client's tokens must carry.
//
// Every check prints one JSON line {"check":..., "ok":true, ...}. The first
// failure prints {"check":..., "ok":false, "error":...} and exits 1; any
// uncaught exception or rejection also exits non-zero.

import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync } from 'node:fs';

// version of an installed dependency, for the report.
function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

process.on('unhandledRejection', (err) => {
  fail('unhandled-rejection', err);
});
process.on('uncaughtException', (err) => {
  fail('uncaught-exception', err);
});

function env(name, dflt) {
  const v = process.env[name] ?? dflt;
  if (v === undefined || v === '') {
    fail('env', new Error(`environment variable ${name} is required`));
  }
  return v;
}

function describe(err) {
  if (err === null || typeof err !== 'object') return String(err);
  const parts = [`${err.name ?? 'Error'}: ${err.message}`];
  if (err.code) parts.push(`code=${err.code}`);
  // openid-client / oauth4webapi errors carry the server's answer.
  if (err.error) parts.push(`error=${err.error}`);
  if (err.error_description) parts.push(`error_description=${err.error_description}`);
  if (err.status) parts.push(`status=${err.status}`);
  if (err.cause !== undefined) {
    const c = err.cause;
    if (c instanceof Error) parts.push(`cause=${describe(c)}`);
    else {
      try {
        parts.push(`cause=${JSON.stringify(c)}`);
      } catch {
        parts.push(`cause=${String(c)}`);
      }
    }
  }
  return parts.join('; ');
}

function fail(check, err) {
  process.stdout.write(JSON.stringify({ check, ok: false, error: describe(err) }) + '\n');
  process.exit(1);
}

function pass(check, details = {}) {
  process.stdout.write(JSON.stringify({ check, ok: true, ...details }) + '\n');
}

// run performs one named check: fn returns details to print, or throws.
async function run(check, fn) {
  let details;
  try {
    details = await fn();
  } catch (err) {
    fail(check, err);
  }
  pass(check, details ?? {});
  return details;
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// expectReject runs fn, which must throw; it returns the error's code.
async function expectReject(fn, what) {
  try {
    await fn();
  } catch (err) {
    return err.code ?? err.name;
  }
  throw new Error(`${what} was accepted, want rejected`);
}

const ISSUER = env('ISSUER');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const OPAQUE_CLIENT_ID = env('OPAQUE_CLIENT_ID');
const OPAQUE_CLIENT_SECRET = env('OPAQUE_CLIENT_SECRET');
const OPAQUE_AUTH = env('OPAQUE_CLIENT_AUTH_METHOD', 'client_secret_basic');
const JWT_AUDIENCE = env('JWT_AUDIENCE', 'dev-api');

function clientAuth(method, secret) {
  switch (method) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret);
    case 'client_secret_post':
      return client.ClientSecretPost(secret);
    default:
      throw new Error(`unsupported client auth method ${method}`);
  }
}

// The dev-mode issuer is plain http on 127.0.0.1. openid-client v6 refuses
// non-https endpoints unless allowInsecureRequests is applied; that is the
// library's documented escape hatch for local development and testing, and
// it is used here only because the server under test is `latch serve --dev`.
// Nothing else about the client's validation is relaxed.
const insecureDev = { execute: [client.allowInsecureRequests] };

async function discover(check, id, secret, method, algorithm) {
  let config;
  await run(check, async () => {
    config = await client.discovery(new URL(ISSUER), id, secret, clientAuth(method, secret), {
      ...insecureDev,
      algorithm,
    });
    const md = config.serverMetadata();
    assert(md.issuer === ISSUER, `discovery issuer ${md.issuer}, want ${ISSUER}`);
    for (const k of ['token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint']) {
      assert(typeof md[k] === 'string' && md[k] !== '', `discovery metadata lacks ${k}`);
    }
    const methods = md.token_endpoint_auth_methods_supported ?? [];
    assert(methods.includes(method), `token_endpoint_auth_methods_supported ${JSON.stringify(methods)} lacks ${method}`);
    return { algorithm, issuer: md.issuer, jwks_uri: md.jwks_uri };
  });
  return config;
}

// Runs the client_credentials -> introspect -> revoke -> introspect cycle
// with openid-client and returns the (revoked) access token.
async function lifecycle(label, config, id, expectJWT) {
  let token;
  await run(`${label}/client_credentials`, async () => {
    const tr = await client.clientCredentialsGrant(config, { scope: 'read' });
    assert(typeof tr.access_token === 'string' && tr.access_token !== '', 'no access_token');
    assert(tr.token_type === 'bearer', `token_type ${tr.token_type}, want bearer (case-insensitive)`);
    assert(typeof tr.expires_in === 'number' && tr.expires_in > 0, `expires_in ${tr.expires_in}`);
    const isJWT = tr.access_token.split('.').length === 3;
    assert(isJWT === expectJWT, `access token ${expectJWT ? 'is not a JWT' : 'looks like a JWT'}: ${tr.access_token.slice(0, 12)}...`);
    if (!expectJWT) assert(tr.access_token.startsWith('lt_at_'), `opaque token lacks lt_at_ prefix`);
    if (tr.scope !== undefined) assert(tr.scope === 'read', `scope ${tr.scope}, want read`);
    token = tr.access_token;
    return { token_type: tr.token_type, expires_in: tr.expires_in, scope: tr.scope, access_token: `${token.slice(0, 12)}...` };
  });

  await run(`${label}/introspect-active`, async () => {
    const ir = await client.tokenIntrospection(config, token, { token_type_hint: 'access_token' });
    assert(ir.active === true, `active ${ir.active}, want true`);
    assert(ir.client_id === id, `client_id ${ir.client_id}, want ${id}`);
    assert(ir.scope === 'read', `scope ${ir.scope}, want read`);
    assert(typeof ir.exp === 'number', `exp ${ir.exp}, want a number`);
    return { client_id: ir.client_id, scope: ir.scope, token_type: ir.token_type };
  });

  await run(`${label}/revoke`, async () => {
    await client.tokenRevocation(config, token, { token_type_hint: 'access_token' });
  });

  await run(`${label}/introspect-after-revoke`, async () => {
    const ir = await client.tokenIntrospection(config, token);
    assert(ir.active === false, `active ${ir.active}, want false`);
    const keys = Object.keys(ir);
    assert(keys.length === 1, `inactive answer has extra members ${JSON.stringify(ir)}, want exactly {"active":false}`);
  });
  return token;
}

// base64url JSON helpers for hand-built tokens.
const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const unb64 = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

async function main() {
  // (a) openid-client against both discovery documents.
  const devOIDC = await discover('openid-client/discovery-oidc', CLIENT_ID, CLIENT_SECRET, 'client_secret_basic', 'oidc');
  await discover('openid-client/discovery-oauth2', CLIENT_ID, CLIENT_SECRET, 'client_secret_basic', 'oauth2');
  const jwksURI = devOIDC.serverMetadata().jwks_uri;

  await lifecycle('openid-client/jwt', devOIDC, CLIENT_ID, true);

  const opaque = await discover('openid-client/opaque-discovery', OPAQUE_CLIENT_ID, OPAQUE_CLIENT_SECRET, OPAQUE_AUTH, 'oauth2');
  await lifecycle(`openid-client/opaque(${OPAQUE_AUTH})`, opaque, OPAQUE_CLIENT_ID, false);

  // RFC 7009 2.2: an invalid token is not an error; RFC 7662 2.2: it is
  // simply inactive.
  await run('openid-client/revoke-unknown-token', async () => {
    await client.tokenRevocation(devOIDC, 'lt_at_not-a-real-token');
  });
  await run('openid-client/introspect-unknown-token', async () => {
    const ir = await client.tokenIntrospection(devOIDC, 'lt_at_not-a-real-token');
    assert(ir.active === false && Object.keys(ir).length === 1, `got ${JSON.stringify(ir)}, want exactly {"active":false}`);
  });

  // A wrong secret must be refused with invalid_client. With
  // client_secret_basic, RFC 6749 5.2 has the server answer 401 with a
  // WWW-Authenticate challenge for the scheme the client used, which
  // oauth4webapi surfaces as WWWAuthenticateChallengeError (before it reads
  // the body); the body must still be the invalid_client error.
  const wrongSecret = (check, id, method) =>
    run(check, async () => {
      const bad = await client.discovery(new URL(ISSUER), id, 'wrong', clientAuth(method, 'wrong'), insecureDev);
      let err;
      try {
        await client.clientCredentialsGrant(bad, { scope: 'read' });
      } catch (e) {
        err = e;
      }
      assert(err !== undefined, 'token issued for a wrong client secret');
      if (err.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') {
        assert(err.status === 401, `challenge with status ${err.status}, want 401`);
        const schemes = (err.cause ?? []).map((c) => c.scheme);
        if (method === 'client_secret_basic') assert(schemes.includes('basic'), `challenge schemes ${JSON.stringify(schemes)}, want basic`);
        const body = await err.response.json();
        assert(body.error === 'invalid_client', `401 body ${JSON.stringify(body)}, want error invalid_client`);
        return { status: err.status, challenge: err.cause, error: body.error };
      }
      assert(err.error === 'invalid_client', `got ${describe(err)}, want invalid_client`);
      assert(err.status === 400 || err.status === 401, `status ${err.status}, want 400 or 401`);
      return { status: err.status, error: err.error };
    });
  await wrongSecret('openid-client/wrong-secret-refused(client_secret_basic)', CLIENT_ID, 'client_secret_basic');
  await wrongSecret(`openid-client/wrong-secret-refused(${OPAQUE_AUTH})`, OPAQUE_CLIENT_ID, OPAQUE_AUTH);

  // (b) jose: verify a fresh JWT access token against the live JWKS.
  const jwks = jose.createRemoteJWKSet(new URL(jwksURI));
  const opts = { issuer: ISSUER, audience: JWT_AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'] };
  const fresh = await client.clientCredentialsGrant(devOIDC, { scope: 'read' });
  const token = fresh.access_token;

  await run('jose/jwtVerify-fresh', async () => {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, opts);
    assert(protectedHeader.alg === 'ES256', `alg ${protectedHeader.alg}`);
    assert(typeof protectedHeader.kid === 'string' && protectedHeader.kid !== '', 'no kid in header');
    assert(payload.client_id === CLIENT_ID, `client_id ${payload.client_id}, want ${CLIENT_ID}`);
    assert(payload.sub === CLIENT_ID, `sub ${payload.sub}, want ${CLIENT_ID}`);
    assert(payload.scope === 'read', `scope ${payload.scope}, want read`);
    assert(typeof payload.jti === 'string' && payload.jti !== '', 'no jti');
    for (const k of ['exp', 'iat']) assert(typeof payload[k] === 'number', `no ${k}`);
    return { header: protectedHeader, claims: Object.keys(payload).sort() };
  });

  const [h, p, s] = token.split('.');

  await run('jose/rejects-altered-payload', async () => {
    const claims = unb64(p);
    claims.scope = 'read write latch:admin';
    const altered = `${h}.${b64(claims)}.${s}`;
    const code = await expectReject(() => jose.jwtVerify(altered, jwks, opts), 'token with an altered payload');
    assert(code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', `rejected with ${code}, want ERR_JWS_SIGNATURE_VERIFICATION_FAILED`);
    return { rejected_with: code };
  });

  await run('jose/rejects-alg-none', async () => {
    const hdr = unb64(h);
    const none = `${b64({ alg: 'none', typ: hdr.typ })}.${p}.`;
    const code = await expectReject(() => jose.jwtVerify(none, jwks, opts), 'unsigned alg=none token');
    return { rejected_with: code };
  });

  await run('jose/rejects-wrong-audience', async () => {
    const code = await expectReject(
      () => jose.jwtVerify(token, jwks, { ...opts, audience: 'some-other-api' }),
      'token for another audience',
    );
    assert(code === 'ERR_JWT_CLAIM_VALIDATION_FAILED', `rejected with ${code}`);
    return { rejected_with: code };
  });

  // The opaque client's token must not verify as a JWT.
  await run('jose/rejects-opaque-token', async () => {
    const ot = await client.clientCredentialsGrant(opaque, { scope: 'read' });
    const code = await expectReject(() => jose.jwtVerify(ot.access_token, jwks, opts), 'opaque token as a JWT');
    await client.tokenRevocation(opaque, ot.access_token);
    return { rejected_with: code };
  });

  pass('all', { issuer: ISSUER, versions: { node: process.version, jose: version('jose'), 'openid-client': version('openid-client') } });
}

main().then(
  () => process.exit(0),
  (err) => fail('main', err),
);
