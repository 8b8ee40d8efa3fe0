// Interoperability check of latch's encrypted access tokens (nested JWTs)
// against jose, which latch did not write: a resource server holding the
// private key decrypts the token with jose's compactDecrypt (algorithms
// pinned to what latch issues) and verifies the inner JWS with jwtVerify
// against the live JWKS; a wrong key and a disallowed algorithm list are
// refused.
//
// Run by cmd/latch/encrypt_interop_test.go; by hand:
//
//   ISSUER=http://127.0.0.1:PORT AUDIENCE=api TOKEN=<compact JWE> \
//   PRIVATE_JWK='{"kty":"EC",...,"d":...}' CLIENT_ID=... node check-jwe.mjs
//
// Every check prints one JSON line {"check":..., "ok":true, ...}; the first
// failure prints {"check":..., "ok":false, "error":...} and exits 1.

import * as jose from 'jose';

function fail(check, err) {
  process.stdout.write(JSON.stringify({ check, ok: false, error: `${err?.name}: ${err?.message} ${err?.code ?? ''}` }) + '\n');
  process.exit(1);
}
process.on('unhandledRejection', (err) => fail('unhandled-rejection', err));

function env(name) {
  const v = process.env[name];
  if (!v) fail('env', new Error(`environment variable ${name} is required`));
  return v;
}

async function run(check, fn) {
  let details;
  try {
    details = await fn();
  } catch (err) {
    fail(check, err);
  }
  process.stdout.write(JSON.stringify({ check, ok: true, ...(details ?? {}) }) + '\n');
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const ISSUER = env('ISSUER');
const AUDIENCE = env('AUDIENCE');
const TOKEN = env('TOKEN');
const CLIENT_ID = env('CLIENT_ID');
const privateJWK = JSON.parse(env('PRIVATE_JWK'));

const pinned = { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] };

async function main() {
  const key = await jose.importJWK(privateJWK, 'ECDH-ES+A256KW');
  let inner;
  await run('jose/compactDecrypt', async () => {
    const { plaintext, protectedHeader } = await jose.compactDecrypt(TOKEN, key, pinned);
    assert(protectedHeader.alg === 'ECDH-ES+A256KW' && protectedHeader.enc === 'A256GCM', `header ${JSON.stringify(protectedHeader)}`);
    assert(protectedHeader.cty === 'JWT', `cty ${protectedHeader.cty}, want JWT`);
    assert(protectedHeader.kid === privateJWK.kid, `kid ${protectedHeader.kid}, want ${privateJWK.kid}`);
    inner = new TextDecoder().decode(plaintext);
    assert(inner.split('.').length === 3, 'payload is not a compact JWS');
    return { header: protectedHeader };
  });

  await run('jose/jwtVerify-inner', async () => {
    const jwks = jose.createRemoteJWKSet(new URL(`${ISSUER}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jose.jwtVerify(inner, jwks, {
      issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'],
    });
    assert(payload.client_id === CLIENT_ID && payload.sub === CLIENT_ID, `claims ${JSON.stringify(payload)}`);
    return { alg: protectedHeader.alg, claims: Object.keys(payload).sort() };
  });

  await run('jose/rejects-wrong-key', async () => {
    const { privateKey } = await jose.generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    try {
      await jose.compactDecrypt(TOKEN, privateKey, pinned);
    } catch (err) {
      return { rejected_with: err.code };
    }
    throw new Error('decrypted with another key');
  });

  await run('jose/rejects-outside-allow-list', async () => {
    try {
      await jose.compactDecrypt(TOKEN, key, { keyManagementAlgorithms: ['RSA-OAEP-256'] });
    } catch (err) {
      assert(err.code === 'ERR_JOSE_ALG_NOT_ALLOWED', `rejected with ${err.code}`);
      return { rejected_with: err.code };
    }
    throw new Error('decrypted with ECDH-ES+A256KW not allowed');
  });

  process.stdout.write(JSON.stringify({ check: 'all', ok: true }) + '\n');
}

main().then(() => process.exit(0), (err) => fail('main', err));
