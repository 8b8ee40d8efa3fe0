// DPoP proofs (RFC 9449 §4.2) made by jose, which latch did not write, for
// verify's interop test: for each algorithm, a fresh key pair from
// generateKeyPair, its public JWK from exportJWK in the proof's header, the
// proof signed with SignJWT, and the key's RFC 7638 thumbprint from
// calculateJwkThumbprint.
//
// A token bound to the key (its cnf.jkt) can only be minted once the key
// exists, and the proof's ath is that token's hash, so for each algorithm
// the script prints {"alg":..., "jkt":..., "jose":<version>}, reads the
// access token as one line on stdin, and prints {"alg":..., "proof":...}.
//
// Run by verify/interop_node_test.go; by hand:
//
//   HTM=GET HTU=https://api.example/resource node dpop-proof.mjs
//
// Any failure exits non-zero.

import * as jose from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

function env(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`environment variable ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const HTM = env('HTM');
const HTU = env('HTU');
const version = JSON.parse(readFileSync(new URL('./node_modules/jose/package.json', import.meta.url), 'utf8')).version;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

for (const alg of ['ES256', 'EdDSA', 'PS256']) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  const jkt = await jose.calculateJwkThumbprint(jwk, 'sha256');
  process.stdout.write(JSON.stringify({ alg, jkt, jose: version }) + '\n');
  const { value: token, done } = await lines.next();
  if (done) {
    process.stderr.write('stdin closed before the token\n');
    process.exit(2);
  }
  // ath: base64url of the SHA-256 of the token's ASCII (RFC 9449 §4.2).
  const ath = createHash('sha256').update(token.trim(), 'ascii').digest('base64url');
  const proof = await new jose.SignJWT({ htm: HTM, htu: HTU, ath })
    .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk })
    .setIssuedAt()
    .setJti(randomUUID())
    .sign(privateKey);
  process.stdout.write(JSON.stringify({ alg, proof }) + '\n');
}
process.exit(0);
