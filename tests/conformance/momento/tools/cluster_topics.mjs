// For tests/integration/test_cluster_topics.py: the official Momento SDK subscribed to a
// topic through one node of a fleet while another SDK client publishes to it through another
// node, COUNT messages in order ("m1", "m2", ...), paced, while the test moves the topic's
// slot. Protocol on stdio, one line each:
//   prints  {"subscribed": true}                  once the subscription is live
//   prints  {"published": n}                      every 500 publishes
//   waits at HOLD published for the line "go" on stdin (the test sends it once the slot has
//   moved), so messages flow before, during and after the move whatever this machine's speed
//   prints  {"done": {...}}                        at the end: what the subscriber saw
//
// usage: node tools/cluster_topics.mjs SUB_HOST:PORT PUB_HOST:PORT ADMIN_KEY CACHE TOPIC COUNT HOLD
import readline from 'node:readline';

import {
  CredentialProvider, TopicClient, TopicConfigurations, TopicPublish,
  TopicSubscribe,
} from '@gomomento/sdk';

const [subEp, pubEp, adminKey, cache, topic, countText, holdText] = process.argv.slice(2);
const count = Number(countText);
const hold = Number(holdText);
const apiKey = Buffer.from(JSON.stringify({ api_key: adminKey, endpoint: 'localhost' }))
  .toString('base64');
const creds = (ep) => CredentialProvider.fromString({
  apiKey,
  endpointOverrides: { cacheEndpoint: ep, controlEndpoint: ep, tokenEndpoint: ep, secureConnection: false },
});
const subClient = new TopicClient({ configuration: TopicConfigurations.Default.latest(), credentialProvider: creds(subEp) });
const pubClient = new TopicClient({ configuration: TopicConfigurations.Default.latest(), credentialProvider: creds(pubEp) });

let go = false;
readline.createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim() === 'go') go = true; });

const items = [];        // [seq, value]
const discontinuities = [];
const errors = [];
const sub = await subClient.subscribe(cache, topic, {
  onItem: (item) => items.push([item.sequenceNumber(), item.valueString()]),
  onError: (err) => { if (errors.length < 10) errors.push(`subscription: ${err.toString()}`); },
  onDiscontinuity: (d) => discontinuities.push([d.lastSequenceNumber(), d.newSequenceNumber(), d.newSequencePage()]),
});
if (!(sub instanceof TopicSubscribe.Subscription)) {
  console.log(JSON.stringify({ done: { error: `subscribe: ${sub.toString()}` } }));
  process.exit(1);
}
console.log(JSON.stringify({ subscribed: true }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let publishFailures = 0;
const t0 = Date.now();
for (let i = 1; i <= count; i++) {
  if (i === hold + 1) {
    const waitStart = Date.now();
    while (!go && Date.now() - waitStart < 120000) await sleep(10);
  }
  // A publish is retried until the server acknowledges it (a client's own duty on UNAVAILABLE);
  // the test counts such retries.
  for (let attempt = 0; ; attempt++) {
    const r = await pubClient.publish(cache, topic, `m${i}`);
    if (r instanceof TopicPublish.Success) break;
    publishFailures++;
    if (errors.length < 10) errors.push(`publish m${i}: ${r.toString()}`);
    if (attempt >= 20) break;
    await sleep(20);
  }
  if (i % 500 === 0) console.log(JSON.stringify({ published: i }));
  if (!go && i % 100 === 0) await sleep(5);  // paced until the move, so the move finds traffic
}
const publishMs = Date.now() - t0;
const waitStart = Date.now();
while (items.length < count && Date.now() - waitStart < 20000) await sleep(20);
await sleep(300);  // anything extra (a duplicate) would show up by now
sub.unsubscribe();
// A large line to a pipe: exit only once it is written (process.exit would cut it short).
process.stdout.write(`${JSON.stringify({ done: { items, discontinuities, errors, publishFailures, publishMs } })}\n`,
  () => process.exit(0));
