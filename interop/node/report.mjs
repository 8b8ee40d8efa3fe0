// report.mjs: the line protocol the Go tests read from the interop scripts
// that play a client through a browser flow (authcode.mjs,
// authcode-dpop-par.mjs): one JSON object per line on stdout, a passed
// check as {"check":...,"ok":true,...}, the first failure as
// {"check":...,"ok":false,"error":...} and exit 1.

import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';

export function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

export function describe(err) {
  if (err === null || typeof err !== 'object') return String(err);
  const parts = [`${err.name ?? 'Error'}: ${err.message}`];
  if (err.code) parts.push(`code=${err.code}`);
  // openid-client / oauth4webapi errors carry the server's answer.
  if (err.error) parts.push(`error=${err.error}`);
  if (err.error_description) parts.push(`error_description=${err.error_description}`);
  if (err.status) parts.push(`status=${err.status}`);
  if (err.cause instanceof Error) parts.push(`cause=${describe(err.cause)}`);
  else if (err.cause !== undefined) {
    try {
      parts.push(`cause=${JSON.stringify(err.cause)}`);
    } catch {
      parts.push(`cause=${String(err.cause)}`);
    }
  }
  return parts.join('; ');
}

export function fail(check, err) {
  process.stdout.write(JSON.stringify({ check, ok: false, error: describe(err) }) + '\n');
  process.exit(1);
}

export function pass(check, details = {}) {
  process.stdout.write(JSON.stringify({ check, ok: true, ...details }) + '\n');
}

export async function run(check, fn) {
  let details;
  try {
    details = await fn();
  } catch (err) {
    fail(check, err);
  }
  pass(check, details ?? {});
  return details;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export function env(name, dflt) {
  const v = process.env[name] ?? dflt;
  if (v === undefined || v === '') fail('env', new Error(`environment variable ${name} is required`));
  return v;
}

// readLine resolves with the first line on stdin; stdin closing first is
// an error, so a caller that gives up does not leave this process waiting.
export function readLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      resolve(line.trim());
    });
    rl.once('close', () => {
      if (!done) reject(new Error('stdin closed before the callback URL arrived'));
    });
  });
}

process.on('unhandledRejection', (err) => fail('unhandled-rejection', err));
process.on('uncaughtException', (err) => fail('uncaught-exception', err));
