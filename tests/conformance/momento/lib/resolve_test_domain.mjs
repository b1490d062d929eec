// Preload (node --import): resolves the test domain `cellar.test` and every name under it
// (cache.cellar.test, control.cellar.test, token.cellar.test, ...) to 127.0.0.1 inside this
// process, so the SDK's v2 credentials, which derive those names from an endpoint, reach the
// server on loopback. Nothing else changes: other names go to the real resolver, and no file
// such as /etc/hosts is touched. `.test` is reserved (RFC 2606), so no real name is shadowed.
//
// grpc-js resolves with dns.promises.lookup (resolver-dns.js, unless
// GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true, which the suite never sets); node:net and node:tls
// use dns.lookup. Both are covered.
import { execFileSync } from 'node:child_process';
import dns from 'node:dns';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_DOMAIN = 'cellar.test';
const LOOPBACK = { address: '127.0.0.1', family: 4 };

function isTestName(hostname) {
  if (typeof hostname !== 'string') return false;
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === TEST_DOMAIN || h.endsWith(`.${TEST_DOMAIN}`);
}

function wantsAll(options) {
  return typeof options === 'object' && options !== null && options.all === true;
}

const realLookup = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  if (!isTestName(hostname)) return realLookup.apply(this, arguments);
  const cb = typeof options === 'function' ? options : callback;
  process.nextTick(() => {
    if (wantsAll(options)) cb(null, [{ ...LOOPBACK }]);
    else cb(null, LOOPBACK.address, LOOPBACK.family);
  });
  return {};
};

const realPromisesLookup = dns.promises.lookup;
dns.promises.lookup = async function lookup(hostname, options) {
  if (!isTestName(hostname)) return realPromisesLookup.call(dns.promises, hostname, options);
  return wantsAll(options) ? [{ ...LOOPBACK }] : { ...LOOPBACK };
};

// Lets a test check that it runs with this preload (a clear failure instead of ENOTFOUND).
globalThis.cellarTestDomainPreload = TEST_DOMAIN;

// CELLAR_CREDENTIALS=v2 (ctest conformance.momento_sdk_v2): one certificate for cellar.test and
// every name under it, which every server of this process serves (lib/harness.mjs), and which
// grpc-js trusts. grpc-js reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH when it loads: hence here,
// before any test file imports the SDK.
if (process.env.CELLAR_CREDENTIALS === 'v2' && !process.env.CELLAR_V2_TLS_DIR) {
  const dir = mkdtempSync(join(tmpdir(), 'cellar-momento-v2-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '2', '-subj', `/CN=${TEST_DOMAIN}`,
    '-addext', `subjectAltName=DNS:${TEST_DOMAIN},DNS:*.${TEST_DOMAIN},IP:127.0.0.1`,
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  process.env.CELLAR_V2_TLS_DIR = dir;
  process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = join(dir, 'cert.pem');
}
