// For tests/integration/test_cluster_data.py: the official Momento SDK on one node of a
// fleet. Reads r:0..N-1 (written by redis-py on another node: "from-redis-<i>"), then writes
// m:<i> = "from-sdk-<i>" and the dictionary md:<i> {f: v<i>} for the test to read back on
// another node. Prints one JSON line: {"read_ok": n, "wrote": n, "errors": [...]}.
//
// usage: node tools/cluster_client.mjs HOST:PORT ADMIN_KEY CACHE N
import {
  CacheClient, CacheGetResponse, CacheSetResponse, CacheDictionarySetFieldResponse,
  Configurations, CredentialProvider,
} from '@gomomento/sdk';

const [endpoint, adminKey, cache, nText] = process.argv.slice(2);
const n = Number(nText);
const apiKey = Buffer.from(JSON.stringify({ api_key: adminKey, endpoint: 'localhost' }))
  .toString('base64');
const client = await CacheClient.create({
  configuration: Configurations.Laptop.v1(),
  credentialProvider: CredentialProvider.fromString({
    apiKey,
    endpointOverrides: {
      cacheEndpoint: endpoint, controlEndpoint: endpoint, tokenEndpoint: endpoint,
      secureConnection: false,
    },
  }),
  defaultTtlSeconds: 600,
});
const errors = [];
let readOk = 0;
let wrote = 0;
try {
  for (let i = 0; i < n; i++) {
    const got = await client.get(cache, `r:${i}`);
    if (got.type === CacheGetResponse.Hit && got.valueString() === `from-redis-${i}`) {
      readOk++;
    } else if (errors.length < 5) {
      errors.push(`get r:${i}: ${got.toString()}`);
    }
    const set = await client.set(cache, `m:${i}`, `from-sdk-${i}`);
    const dict = await client.dictionarySetField(cache, `md:${i}`, 'f', `v${i}`);
    if (set.type === CacheSetResponse.Success &&
        dict.type === CacheDictionarySetFieldResponse.Success) {
      wrote++;
    } else if (errors.length < 5) {
      errors.push(`set m:${i}: ${set.toString()} ${dict.toString()}`);
    }
  }
} finally {
  client.close();
}
console.log(JSON.stringify({ read_ok: readOk, wrote, errors }));
