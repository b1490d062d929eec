// Conformance: the unmodified Momento Node SDK's PreviewLeaderboardClient (@gomomento/sdk
// 1.118.1, `leaderboard.Leaderboard` service on the cache endpoint) against one
// `cellar serve --dev-no-auth` instance: upsert, fetchByScore (min inclusive / max exclusive,
// offset, count, order), fetchByRank, getRank, length, removeElements, delete; 0-based ordinal
// ranks, ties, missing leaderboards, request validation the server must do itself.
import { describe, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  LeaderboardConfigurations,
  LeaderboardDelete,
  LeaderboardFetch,
  LeaderboardLength,
  LeaderboardOrder,
  LeaderboardRemoveElements,
  LeaderboardUpsert,
  MomentoErrorCode,
  PreviewLeaderboardClient,
} from '@gomomento/sdk';

import { expectError, expectType, localCredentials, loggerFactory, uid } from '../lib/harness.mjs';
import { devSuite } from '../lib/collections_helpers.mjs';

const INVALID_ARGUMENT = MomentoErrorCode.INVALID_ARGUMENT_ERROR;
const NOT_FOUND = MomentoErrorCode.NOT_FOUND_ERROR;
const ASC = LeaderboardOrder.Ascending;
const DESC = LeaderboardOrder.Descending;

const suite = devSuite('lb');
const it = suite.it;
let lbClient; // PreviewLeaderboardClient, made on first use (the server starts in devSuite's hook)
function lbc() {
  lbClient ??= new PreviewLeaderboardClient({
    configuration: LeaderboardConfigurations.Laptop.v1(loggerFactory),
    credentialProvider: localCredentials(suite.server),
  });
  return lbClient;
}
after(() => { try { lbClient?.close(); } catch { /* */ } });

/** A fresh leaderboard in the run's cache. */
const board = () => lbc().leaderboard(suite.cache, uid('lb'));

async function upsert(lb, elements) {
  expectType(await lb.upsert(elements), LeaderboardUpsert.Success, 'upsert');
}
async function byScore(lb, opts) {
  return expectType(await lb.fetchByScore(opts), LeaderboardFetch.Success, `fetchByScore ${JSON.stringify(opts ?? {})}`)
    .values();
}
async function byRank(lb, start, end, opts) {
  return expectType(await lb.fetchByRank(start, end, opts), LeaderboardFetch.Success,
    `fetchByRank(${start}, ${end}, ${JSON.stringify(opts ?? {})})`).values();
}
async function ranksOf(lb, ids, opts) {
  const v = expectType(await lb.getRank(ids, opts), LeaderboardFetch.Success, `getRank(${ids})`).values();
  // compared independently of the reply's order
  return v.sort((a, b) => a.id - b.id);
}
async function lengthOf(lb) {
  return expectType(await lb.length(), LeaderboardLength.Success, 'length').length();
}
/** [{id, score, rank}] for elements given in rank order. */
const ranked = (pairs, firstRank = 0) => pairs.map(([id, score], i) => ({ id, score, rank: firstRank + i }));

// The data set of the SDK's own leaderboard integration tests (fetch by score).
const EIGHT = new Map([[123, 10], [234, 100], [345, 250], [456, 500], [567, 750], [678, 1000], [789, 1500], [890, 2000]]);
const EIGHT_ASC = [...EIGHT.entries()];
const EIGHT_DESC = [...EIGHT_ASC].reverse();

// =============================================================================================
describe('leaderboard', () => {
  it('a leaderboard that does not exist: length 0, empty fetches, remove and delete succeed', async () => {
    const lb = board();
    assert.equal(await lengthOf(lb), 0);
    assert.deepEqual(await byScore(lb), []);
    assert.deepEqual(await byRank(lb, 0, 100), []);
    assert.deepEqual(await ranksOf(lb, [123]), []);
    expectType(await lb.removeElements([123]), LeaderboardRemoveElements.Success);
    expectType(await lb.delete(), LeaderboardDelete.Success);
    assert.equal(await lengthOf(lb), 0, 'neither remove nor delete creates it');
  });

  it('upsert inserts and updates (Map and Record); fetchByScore returns all elements with 0-based ranks', async () => {
    const lb = board();
    await upsert(lb, new Map([[123, 100], [456, 200], [789, 300]]));
    assert.deepEqual(await byScore(lb), ranked([[123, 100], [456, 200], [789, 300]]));
    await upsert(lb, new Map([[1234, 800], [5678, 900]]));
    assert.equal(await lengthOf(lb), 5);
    await upsert(lb, new Map([[123, 500], [456, 600], [789, 700]]));
    assert.deepEqual(await byScore(lb),
      ranked([[123, 500], [456, 600], [789, 700], [1234, 800], [5678, 900]]), 'scores updated in place');
    await upsert(lb, { 4321: 1000, 9876: 2000 });
    assert.deepEqual(await byScore(lb),
      ranked([[123, 500], [456, 600], [789, 700], [1234, 800], [5678, 900], [4321, 1000], [9876, 2000]]));
    await upsert(lb, new Map([[9876, -1]]));
    assert.deepEqual((await byRank(lb, 0, 2)), ranked([[9876, -1], [123, 500]]), 'an update can move an element down');
    assert.equal(await lengthOf(lb), 7);
  });

  it('fetchByScore: minScore inclusive, maxScore exclusive, offset, count, order; ranks are global', async () => {
    const lb = board();
    await upsert(lb, EIGHT);
    const cases = [
      [undefined, ranked(EIGHT_ASC)],
      [{ offset: 2, count: 2 }, ranked(EIGHT_ASC.slice(2, 4), 2)],
      [{ minScore: 750, maxScore: 1500 }, ranked([[567, 750], [678, 1000]], 4)],
      [{ minScore: 750 }, ranked(EIGHT_ASC.slice(4), 4)],
      [{ maxScore: 250 }, ranked(EIGHT_ASC.slice(0, 2))],
      [{ maxScore: 250.5 }, ranked(EIGHT_ASC.slice(0, 3))],
      [{ minScore: 10, maxScore: 10 }, []],
      [{ minScore: 10, maxScore: 10.5 }, ranked([[123, 10]])],
      [{ minScore: 5000 }, []],
      [{ count: 1 }, ranked(EIGHT_ASC.slice(0, 1))],
      [{ offset: 6 }, ranked(EIGHT_ASC.slice(6), 6)],
      [{ offset: 10 }, []],
      [{ count: 10 }, ranked(EIGHT_ASC)],
      [{ order: ASC }, ranked(EIGHT_ASC)],
      [{ order: DESC }, ranked(EIGHT_DESC)],
      [{ order: DESC, offset: 1, count: 2 }, ranked(EIGHT_DESC.slice(1, 3), 1)],
      // the SDK's own integration test: descending, rank counted from the top score
      [{ offset: 2, count: 10, minScore: 0, maxScore: 800, order: DESC }, ranked([[345, 250], [234, 100], [123, 10]], 5)],
      [{ minScore: 100, maxScore: 1000, order: DESC }, ranked([[567, 750], [456, 500], [345, 250], [234, 100]], 3)],
    ];
    for (const [opts, expected] of cases) {
      assert.deepEqual(await byScore(lb, opts), expected, `fetchByScore ${JSON.stringify(opts ?? {})}`);
    }
  });

  it('fetchByRank: half-open rank ranges in both orders; out-of-range ends are clamped', async () => {
    const lb = board();
    await upsert(lb, EIGHT);
    assert.deepEqual(await byRank(lb, 0, 10), ranked(EIGHT_ASC));
    assert.deepEqual(await byRank(lb, 0, 10, { order: ASC }), ranked(EIGHT_ASC));
    assert.deepEqual(await byRank(lb, 0, 10, { order: DESC }), ranked(EIGHT_DESC));
    assert.deepEqual(await byRank(lb, 0, 2), ranked(EIGHT_ASC.slice(0, 2)));
    assert.deepEqual(await byRank(lb, 3, 5), ranked(EIGHT_ASC.slice(3, 5), 3));
    assert.deepEqual(await byRank(lb, 1, 4, { order: DESC }), ranked(EIGHT_DESC.slice(1, 4), 1));
    assert.deepEqual(await byRank(lb, 5, 100), ranked(EIGHT_ASC.slice(5), 5));
    assert.deepEqual(await byRank(lb, 7, 8), ranked(EIGHT_ASC.slice(7), 7));
    assert.deepEqual(await byRank(lb, 8, 20), []);
    assert.deepEqual(await byRank(lb, 0, 8192), ranked(EIGHT_ASC), 'a range of exactly 8192 ranks is allowed');
  });

  it('fetchByRank rejects empty and too-wide ranges with INVALID_ARGUMENT (checked by the server)', async () => {
    const lb = board();
    await upsert(lb, new Map([[1, 1]]));
    // Neither of these is caught by the SDK's own validation.
    expectError(await lb.fetchByRank(0, 0), LeaderboardFetch.Error, INVALID_ARGUMENT, 'fetchByRank(0, 0)');
    expectError(await lb.fetchByRank(0, 8193), LeaderboardFetch.Error, INVALID_ARGUMENT, 'fetchByRank(0, 8193)');
    expectError(await lb.fetchByRank(1, 8194), LeaderboardFetch.Error, INVALID_ARGUMENT, 'fetchByRank(1, 8194)');
    assert.deepEqual(await byRank(lb, 1, 8193), [], 'a range of exactly 8192 ranks starting at 1 is allowed');
  });

  it('getRank: ranks of the given ids in either order; unknown ids are left out', async () => {
    const lb = board();
    await upsert(lb, new Map([[123, 100], [456, 200], [789, 300]]));
    assert.deepEqual(await ranksOf(lb, [123, 789], { order: ASC }),
      [{ id: 123, score: 100, rank: 0 }, { id: 789, score: 300, rank: 2 }]);
    assert.deepEqual(await ranksOf(lb, [123, 789], { order: DESC }),
      [{ id: 123, score: 100, rank: 2 }, { id: 789, score: 300, rank: 0 }]);
    assert.deepEqual(await ranksOf(lb, [456]), [{ id: 456, score: 200, rank: 1 }], 'default order is ascending');
    assert.deepEqual(await ranksOf(lb, [999, 456, 1000]), [{ id: 456, score: 200, rank: 1 }], 'unknown ids omitted');
    assert.deepEqual(await ranksOf(lb, [999]), []);
  });

  it('removeElements (unknown ids ignored) and length; removing every element empties the leaderboard', async () => {
    const lb = board();
    await upsert(lb, new Map([[123, 100], [456, 200], [789, 300]]));
    assert.equal(await lengthOf(lb), 3);
    expectType(await lb.removeElements([123, 789, 4242]), LeaderboardRemoveElements.Success);
    assert.equal(await lengthOf(lb), 1);
    assert.deepEqual(await byScore(lb), [{ id: 456, score: 200, rank: 0 }], 'ranks close up after removals');
    expectType(await lb.removeElements([456]), LeaderboardRemoveElements.Success);
    assert.equal(await lengthOf(lb), 0);
    assert.deepEqual(await byRank(lb, 0, 10), []);
  });

  it('delete removes the whole leaderboard; it can be filled again afterwards', async () => {
    const lb = board();
    await upsert(lb, new Map([[1, 1], [2, 2], [3, 3]]));
    assert.equal(await lengthOf(lb), 3);
    expectType(await lb.delete(), LeaderboardDelete.Success);
    assert.equal(await lengthOf(lb), 0);
    assert.deepEqual(await byScore(lb), []);
    assert.deepEqual(await ranksOf(lb, [1, 2, 3]), []);
    await upsert(lb, new Map([[7, 70]]));
    assert.deepEqual(await byScore(lb), [{ id: 7, score: 70, rank: 0 }]);
  });

  it('ties: equal scores get distinct consecutive ordinal ranks, consistent across calls', async () => {
    const lb = board();
    await upsert(lb, new Map([[1, 50], [2, 50], [3, 50], [4, 10], [5, 90]]));
    for (const order of [ASC, DESC]) {
      const all = await byRank(lb, 0, 10, { order });
      assert.deepEqual(all.map((e) => e.rank), [0, 1, 2, 3, 4], `${order}: ranks`);
      assert.deepEqual(all.map((e) => e.score), order === ASC ? [10, 50, 50, 50, 90] : [90, 50, 50, 50, 10]);
      assert.equal(all[0].id, order === ASC ? 4 : 5);
      assert.equal(all[4].id, order === ASC ? 5 : 4);
      assert.deepEqual(all.slice(1, 4).map((e) => e.id).sort(), [1, 2, 3], `${order}: the tied ids share ranks 1..3`);
      // getRank, fetchByScore and a narrower fetchByRank agree with the full listing
      const byId = Object.fromEntries(all.map((e) => [e.id, e]));
      assert.deepEqual(await ranksOf(lb, [1, 2, 3], { order }), [byId[1], byId[2], byId[3]], `${order}: getRank`);
      assert.deepEqual(await byScore(lb, { order }), all, `${order}: fetchByScore`);
      assert.deepEqual(await byRank(lb, 2, 3, { order }), [all[2]], `${order}: fetchByRank(2, 3)`);
      assert.deepEqual(await byScore(lb, { order, offset: 2, count: 1 }), [all[2]], `${order}: offset into a tie`);
    }
  });

  it('scores are doubles (exact round trip), ids use the full uint32 range', async () => {
    const lb = board();
    await upsert(lb, new Map([[123, 27.004309862363737], [456, 16777217], [789, 300.5], [4294967295, -1e-9], [0, 0]]));
    assert.deepEqual(await byScore(lb), ranked([[4294967295, -1e-9], [0, 0], [123, 27.004309862363737],
      [789, 300.5], [456, 16777217]]));
    assert.deepEqual(await ranksOf(lb, [0, 4294967295]), [{ id: 0, score: 0, rank: 1 }, { id: 4294967295, score: -1e-9, rank: 0 }]);
  });

  it('leaderboards are independent of each other and of other caches', async () => {
    const name = uid('lb-shared');
    const a = lbc().leaderboard(suite.cache, name);
    const b = lbc().leaderboard(suite.cache, uid('lb-other'));
    const other = lbc().leaderboard('default', name); // the dev server's "default" cache
    await upsert(a, new Map([[1, 1]]));
    await upsert(b, new Map([[2, 2], [3, 3]]));
    assert.equal(await lengthOf(a), 1);
    assert.equal(await lengthOf(b), 2);
    assert.equal(await lengthOf(other), 0, 'same name in another cache');
    await upsert(other, new Map([[9, 9]]));
    assert.deepEqual(await byScore(a), [{ id: 1, score: 1, rank: 0 }]);
    expectType(await other.delete(), LeaderboardDelete.Success);
    assert.equal(await lengthOf(a), 1, 'deleting one leaderboard leaves the others');
  });

  it('a cache that does not exist gives NOT_FOUND_ERROR', async () => {
    const lb = lbc().leaderboard(uid('nocache'), 'lb');
    expectError(await lb.upsert(new Map([[1, 1]])), LeaderboardUpsert.Error, NOT_FOUND, 'upsert');
    expectError(await lb.fetchByScore(), LeaderboardFetch.Error, NOT_FOUND, 'fetchByScore');
    expectError(await lb.fetchByRank(0, 10), LeaderboardFetch.Error, NOT_FOUND, 'fetchByRank');
    expectError(await lb.getRank([1]), LeaderboardFetch.Error, NOT_FOUND, 'getRank');
    expectError(await lb.length(), LeaderboardLength.Error, NOT_FOUND, 'length');
    expectError(await lb.removeElements([1]), LeaderboardRemoveElements.Error, NOT_FOUND, 'removeElements');
    expectError(await lb.delete(), LeaderboardDelete.Error, NOT_FOUND, 'delete');
  });
});
