// Preload (node --import): resolves the test domain `cellar.test` and every name under it
// (cache.cellar.test, control.cellar.test, token.cellar.test, ...) to 127.0.0.1 inside this
// process, so the SDK's v2 credentials, which derive those names from an endpoint, reach the
// server on loopback. Nothing else changes: other names go to the real resolver, and no file
// such as /etc/hosts is touched. `.test` is reserved (RFC 2606), so no real name is shadowed.
//
// grpc-js resolves with dns.promises.lookup (resolver-dns.js, unless
// GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true, which the suite never sets); node:net and node:tls
// use dns.lookup. Both are covered.
import dns from 'node:dns';

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
