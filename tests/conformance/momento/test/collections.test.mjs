// Conformance: every collection method of the unmodified Momento Node SDK's CacheClient
// (@gomomento/sdk 1.118.1) against one `cellar serve --dev-no-auth` instance: dictionaries,
// lists, sets, sorted sets, collection TTLs (CollectionTtl, refresh / no refresh), collections
// disappearing when emptied, wrong-type errors, itemGetType, and RESP <-> SDK visibility.
import { describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  CacheDelete,
  CacheDictionaryFetch,
  CacheDictionaryGetField,
  CacheDictionaryGetFields,
  CacheDictionaryIncrement,
  CacheDictionaryLength,
  CacheDictionaryRemoveField,
  CacheDictionaryRemoveFields,
  CacheDictionarySetField,
  CacheDictionarySetFields,
  CacheGet,
  CacheIncrement,
  CacheItemGetType,
  CacheKeyExists,
  CacheListConcatenateBack,
  CacheListConcatenateFront,
  CacheListFetch,
  CacheListLength,
  CacheListPopBack,
  CacheListPopFront,
  CacheListPushBack,
  CacheListPushFront,
  CacheListRemoveValue,
  CacheListRetain,
  CacheSet,
  CacheSetAddElement,
  CacheSetAddElements,
  CacheSetContainsElement,
  CacheSetContainsElements,
  CacheSetFetch,
  CacheSetRemoveElement,
  CacheSetRemoveElements,
  CacheSetSample,
  CacheSortedSetFetch,
  CacheSortedSetGetRank,
  CacheSortedSetGetScore,
  CacheSortedSetGetScores,
  CacheSortedSetIncrementScore,
  CacheSortedSetLength,
  CacheSortedSetLengthByScore,
  CacheSortedSetPutElement,
  CacheSortedSetPutElements,
  CacheSortedSetRemoveElement,
  CacheSortedSetRemoveElements,
  CacheSortedSetUnionStore,
  CollectionTtl,
  FailedPreconditionError,
  ItemType,
  MomentoErrorCode,
  SortedSetAggregate,
  SortedSetOrder,
} from '@gomomento/sdk';
// @gomomento/sdk 1.118.1 does not re-export these two response namespaces; the SDK itself uses
// them from @gomomento/sdk-core (the one copy pinned by package-lock.json), so instanceof holds.
import { CacheSetLength, CacheSetPop } from '@gomomento/sdk-core';

import { allBytes, expectError, expectType, sleep, uid } from '../lib/harness.mjs';
import {
  DEFAULT_TTL_SECONDS,
  bytes,
  devSuite,
  expectGone,
  expectTtlAbout,
  sorted,
} from '../lib/collections_helpers.mjs';

const FAILED_PRECONDITION = MomentoErrorCode.FAILED_PRECONDITION_ERROR;
const INVALID_ARGUMENT = MomentoErrorCode.INVALID_ARGUMENT_ERROR;

const suite = devSuite('coll');
const it = suite.it;
// Short-hands bound to the run's cache (filled in by the before hook).
const c = () => suite.client;
const C = () => suite.cache;

// ---------------------------------------------------------------------------------------------
// Small typed accessors

async function dictRecord(name) {
  const r = expectType(await c().dictionaryFetch(C(), name), CacheDictionaryFetch.Hit, `dictionaryFetch(${name})`);
  return { ...r.valueRecord() };
}
async function listValues(name, opts) {
  const r = expectType(await c().listFetch(C(), name, opts), CacheListFetch.Hit,
    `listFetch(${name}, ${JSON.stringify(opts ?? {})})`);
  return r.valueListString();
}
async function setMembers(name) {
  const r = expectType(await c().setFetch(C(), name), CacheSetFetch.Hit, `setFetch(${name})`);
  return sorted(r.valueSetString());
}
async function zByRank(name, opts) {
  const r = expectType(await c().sortedSetFetchByRank(C(), name, opts), CacheSortedSetFetch.Hit,
    `sortedSetFetchByRank(${name}, ${JSON.stringify(opts ?? {})})`);
  return r.valueArray();
}
async function zByScore(name, opts) {
  const r = expectType(await c().sortedSetFetchByScore(C(), name, opts), CacheSortedSetFetch.Hit,
    `sortedSetFetchByScore(${name}, ${JSON.stringify(opts ?? {})})`);
  return r.valueArray();
}
async function zPut(name, elements, opts) {
  expectType(await c().sortedSetPutElements(C(), name, elements, opts), CacheSortedSetPutElements.Success,
    `sortedSetPutElements(${name})`);
}
/** The ItemType name ('SCALAR', 'DICTIONARY', 'LIST', 'SET', 'SORTED_SET') of an existing key. */
async function itemType(key) {
  const r = expectType(await c().itemGetType(C(), key), CacheItemGetType.Hit, `itemGetType(${key})`);
  return ItemType[r.itemType()];
}
/** Assert a Success response (any write whose result is not otherwise checked). */
function must(r, what) {
  assert.ok(r.is_success === true, `${what}: expected a Success response, got ${r.constructor?.name} ${r.toString()}`);
  return r;
}
/** [{value, score}] from a plain {value: score} object, ascending by score. */
function zElems(obj) {
  return Object.entries(obj).map(([value, score]) => ({ value, score }));
}

// =============================================================================================
describe('dictionaries', () => {
  it('dictionarySetField / dictionaryGetField: Hit with the value, Miss for an absent field or dictionary', async () => {
    const d = uid('dict');
    expectType(await c().dictionaryGetField(C(), d, 'f1'), CacheDictionaryGetField.Miss, 'field of a missing dictionary');

    expectType(await c().dictionarySetField(C(), d, 'f1', 'v1'), CacheDictionarySetField.Success);
    const h = expectType(await c().dictionaryGetField(C(), d, 'f1'), CacheDictionaryGetField.Hit);
    assert.equal(h.valueString(), 'v1');
    assert.equal(h.fieldString(), 'f1');

    const m = expectType(await c().dictionaryGetField(C(), d, 'nope'), CacheDictionaryGetField.Miss, 'absent field');
    assert.equal(m.fieldString(), 'nope');

    expectType(await c().dictionarySetField(C(), d, 'f1', 'v1-new'), CacheDictionarySetField.Success);
    assert.equal(expectType(await c().dictionaryGetField(C(), d, 'f1'), CacheDictionaryGetField.Hit).valueString(),
      'v1-new', 'overwritten');
  });

  it('dictionarySetFields (Map, Record, pairs) and dictionaryGetFields: per-field Hit/Miss parts in request order', async () => {
    const d = uid('dict');
    expectType(await c().dictionarySetFields(C(), d, new Map([['a', '1'], ['b', '2']])), CacheDictionarySetFields.Success);
    expectType(await c().dictionarySetFields(C(), d, { c: '3', d: '4' }), CacheDictionarySetFields.Success);
    expectType(await c().dictionarySetFields(C(), d, [['e', '5'], ['a', '1b']]), CacheDictionarySetFields.Success);

    const r = expectType(await c().dictionaryGetFields(C(), d, ['a', 'x', 'c', 'e', 'y']), CacheDictionaryGetFields.Hit);
    const parts = r.responses.map((p) => (p instanceof CacheDictionaryGetField.Hit
      ? ['hit', p.fieldString(), p.valueString()]
      : p instanceof CacheDictionaryGetField.Miss ? ['miss', p.fieldString()] : ['other', p.toString()]));
    assert.deepEqual(parts, [['hit', 'a', '1b'], ['miss', 'x'], ['hit', 'c', '3'], ['hit', 'e', '5'], ['miss', 'y']]);
    assert.deepEqual({ ...r.valueRecord() }, { a: '1b', c: '3', e: '5' }, 'valueRecord holds the hits only');

    expectType(await c().dictionaryGetFields(C(), uid('nodict'), ['a', 'b']), CacheDictionaryGetFields.Miss,
      'dictionaryGetFields on a missing dictionary');
  });

  it('dictionaryFetch: Hit with every field, Miss for a missing dictionary; binary fields and values round-trip', async () => {
    const d = uid('dict');
    expectType(await c().dictionaryFetch(C(), d), CacheDictionaryFetch.Miss, 'fetch of a missing dictionary');
    must(await c().dictionarySetFields(C(), d, { x: 'one', y: 'two', 'ünï': '世界' }), 'dictionarySetFields');
    assert.deepEqual(await dictRecord(d), { x: 'one', y: 'two', 'ünï': '世界' });

    expectType(await c().dictionarySetField(C(), d, 'bin', allBytes()), CacheDictionarySetField.Success);
    expectType(await c().dictionarySetField(C(), d, bytes('empty'), ''), CacheDictionarySetField.Success);
    const g = expectType(await c().dictionaryGetField(C(), d, 'bin'), CacheDictionaryGetField.Hit);
    assert.deepEqual(Buffer.from(g.valueUint8Array()), Buffer.from(allBytes()));
    const f = expectType(await c().dictionaryFetch(C(), d), CacheDictionaryFetch.Hit);
    const m = f.valueMapStringUint8Array();
    assert.deepEqual(sorted(m.keys()), sorted(['x', 'y', 'ünï', 'bin', 'empty']));
    assert.deepEqual(Buffer.from(m.get('bin')), Buffer.from(allBytes()));
    assert.equal(m.get('empty').length, 0, 'an empty value is stored');
  });

  it('dictionaryIncrement: new field, existing field, negative, amount 0; non-integer field -> FAILED_PRECONDITION and untouched', async () => {
    const d = uid('dict');
    const inc = async (field, amount) => expectType(await c().dictionaryIncrement(C(), d, field, amount),
      CacheDictionaryIncrement.Success, `dictionaryIncrement(${field}, ${amount})`).value();
    assert.equal(await inc('n', 5), 5, 'creates the dictionary and the field');
    assert.equal(await inc('n', 10), 15);
    assert.equal(await inc('n', -20), -5);
    assert.equal(await inc('n', undefined), -4, 'default amount is 1');
    assert.equal(await inc('zero', 0), 0, 'a new field incremented by 0 is 0');
    assert.equal(expectType(await c().dictionaryGetField(C(), d, 'n'), CacheDictionaryGetField.Hit).valueString(), '-4',
      'stored as a base-10 string');

    must(await c().dictionarySetField(C(), d, 's', '41'), 'dictionarySetField');
    assert.equal(await inc('s', 1), 42, 'a field set to a decimal string is an integer');

    must(await c().dictionarySetField(C(), d, 'text', 'abc'), 'dictionarySetField');
    const e = expectError(await c().dictionaryIncrement(C(), d, 'text', 1), CacheDictionaryIncrement.Error,
      FAILED_PRECONDITION, 'increment of a non-integer field');
    assert.ok(e.innerException() instanceof FailedPreconditionError);
    assert.equal(expectType(await c().dictionaryGetField(C(), d, 'text'), CacheDictionaryGetField.Hit).valueString(),
      'abc', 'the field is untouched');
    assert.deepEqual(await dictRecord(d), { n: '-4', zero: '0', s: '42', text: 'abc' });
  });

  it('dictionaryRemoveField(s) and dictionaryLength; removing the last field deletes the dictionary', async () => {
    const d = uid('dict');
    expectType(await c().dictionaryLength(C(), d), CacheDictionaryLength.Miss, 'length of a missing dictionary');
    expectType(await c().dictionaryRemoveField(C(), d, 'a'), CacheDictionaryRemoveField.Success,
      'remove from a missing dictionary');
    must(await c().dictionarySetFields(C(), d, { a: '1', b: '2', c: '3', d: '4' }), 'dictionarySetFields');
    assert.equal(expectType(await c().dictionaryLength(C(), d), CacheDictionaryLength.Hit).length(), 4);

    expectType(await c().dictionaryRemoveField(C(), d, 'a'), CacheDictionaryRemoveField.Success);
    expectType(await c().dictionaryRemoveFields(C(), d, ['b', 'nope']), CacheDictionaryRemoveFields.Success);
    assert.deepEqual(await dictRecord(d), { c: '3', d: '4' });
    assert.equal(expectType(await c().dictionaryLength(C(), d), CacheDictionaryLength.Hit).length(), 2);

    expectType(await c().dictionaryRemoveFields(C(), d, ['c', 'd']), CacheDictionaryRemoveFields.Success);
    expectType(await c().dictionaryFetch(C(), d), CacheDictionaryFetch.Miss, 'fetch after the last field is removed');
    expectType(await c().dictionaryLength(C(), d), CacheDictionaryLength.Miss, 'length after the last field is removed');
    await expectGone(c(), C(), d, 'emptied dictionary');
    assert.equal(expectType(await c().keyExists(C(), d), CacheKeyExists.Success).exists(), false);
  });

  it('delete removes a whole dictionary', async () => {
    const d = uid('dict');
    must(await c().dictionarySetFields(C(), d, { a: '1', b: '2' }), 'dictionarySetFields');
    assert.equal(expectType(await c().keyExists(C(), d), CacheKeyExists.Success).exists(), true);
    expectType(await c().delete(C(), d), CacheDelete.Success);
    expectType(await c().dictionaryFetch(C(), d), CacheDictionaryFetch.Miss);
  });
});

// =============================================================================================
describe('lists', () => {
  it('listPushBack / listPushFront return the new length; listFetch keeps the order', async () => {
    const l = uid('list');
    expectType(await c().listFetch(C(), l), CacheListFetch.Miss, 'fetch of a missing list');
    const lens = [];
    for (const v of ['b', 'c']) {
      lens.push(expectType(await c().listPushBack(C(), l, v), CacheListPushBack.Success).listLength());
    }
    lens.push(expectType(await c().listPushFront(C(), l, 'a'), CacheListPushFront.Success).listLength());
    lens.push(expectType(await c().listPushBack(C(), l, 'd'), CacheListPushBack.Success).listLength());
    assert.deepEqual(lens, [1, 2, 3, 4]);
    assert.deepEqual(await listValues(l), ['a', 'b', 'c', 'd']);
    assert.equal(expectType(await c().listLength(C(), l), CacheListLength.Hit).length(), 4);
    expectType(await c().listLength(C(), uid('nolist')), CacheListLength.Miss, 'length of a missing list');
  });

  it('push with truncation: pushFront truncateBackToSize drops from the back, pushBack truncateFrontToSize from the front', async () => {
    const l = uid('list');
    must(await c().listConcatenateBack(C(), l, ['a', 'b', 'c']), 'listConcatenateBack');
    const r1 = expectType(await c().listPushFront(C(), l, 'x', { truncateBackToSize: 3 }), CacheListPushFront.Success);
    assert.equal(r1.listLength(), 3, 'length after truncation');
    assert.deepEqual(await listValues(l), ['x', 'a', 'b']);

    const r2 = expectType(await c().listPushBack(C(), l, 'y', { truncateFrontToSize: 2 }), CacheListPushBack.Success);
    assert.equal(r2.listLength(), 2);
    assert.deepEqual(await listValues(l), ['b', 'y']);

    const r3 = expectType(await c().listPushBack(C(), l, 'z', { truncateFrontToSize: 10 }), CacheListPushBack.Success);
    assert.equal(r3.listLength(), 3, 'no truncation below the limit');
    assert.deepEqual(await listValues(l), ['b', 'y', 'z']);
  });

  it('listConcatenateFront keeps the given order in front; listConcatenateBack appends; both truncate', async () => {
    const l = uid('list');
    must(await c().listPushBack(C(), l, 'x'), 'listPushBack');
    const f = expectType(await c().listConcatenateFront(C(), l, ['a', 'b', 'c']), CacheListConcatenateFront.Success);
    assert.equal(f.listLength(), 4);
    assert.deepEqual(await listValues(l), ['a', 'b', 'c', 'x'], 'concatenateFront inserts [a,b,c] as a block');

    const b = expectType(await c().listConcatenateBack(C(), l, ['d', 'e']), CacheListConcatenateBack.Success);
    assert.equal(b.listLength(), 6);
    assert.deepEqual(await listValues(l), ['a', 'b', 'c', 'x', 'd', 'e']);

    const ft = expectType(await c().listConcatenateFront(C(), l, ['p', 'q'], { truncateBackToSize: 4 }),
      CacheListConcatenateFront.Success);
    assert.equal(ft.listLength(), 4);
    assert.deepEqual(await listValues(l), ['p', 'q', 'a', 'b']);

    const bt = expectType(await c().listConcatenateBack(C(), l, ['r'], { truncateFrontToSize: 3 }),
      CacheListConcatenateBack.Success);
    assert.equal(bt.listLength(), 3);
    assert.deepEqual(await listValues(l), ['a', 'b', 'r']);

    const l2 = uid('list');
    const n = expectType(await c().listConcatenateFront(C(), l2, ['1', '2', '3', '4', '5'], { truncateBackToSize: 2 }),
      CacheListConcatenateFront.Success);
    assert.equal(n.listLength(), 2, 'a new list is truncated too');
    assert.deepEqual(await listValues(l2), ['1', '2']);
  });

  it('listPopFront / listPopBack: Hit with the element, Miss on a missing list; popping the last element deletes the list', async () => {
    const l = uid('list');
    expectType(await c().listPopFront(C(), l), CacheListPopFront.Miss, 'popFront of a missing list');
    expectType(await c().listPopBack(C(), l), CacheListPopBack.Miss, 'popBack of a missing list');
    must(await c().listConcatenateBack(C(), l, ['one', 'two', 'three']), 'listConcatenateBack');
    assert.equal(expectType(await c().listPopFront(C(), l), CacheListPopFront.Hit).valueString(), 'one');
    assert.equal(expectType(await c().listPopBack(C(), l), CacheListPopBack.Hit).valueString(), 'three');
    assert.deepEqual(await listValues(l), ['two']);
    const last = expectType(await c().listPopBack(C(), l), CacheListPopBack.Hit);
    assert.deepEqual(Buffer.from(last.valueUint8Array()), Buffer.from('two'));
    expectType(await c().listFetch(C(), l), CacheListFetch.Miss, 'fetch after the last pop');
    expectType(await c().listLength(C(), l), CacheListLength.Miss, 'length after the last pop');
    expectType(await c().listPopFront(C(), l), CacheListPopFront.Miss, 'pop after the last pop');
    await expectGone(c(), C(), l, 'emptied list');
  });

  it('listFetch with startIndex/endIndex: Python slice semantics (negative from the end, end exclusive, clamped)', async () => {
    const l = uid('list');
    const all = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    must(await c().listConcatenateBack(C(), l, all), 'listConcatenateBack');
    const range = (a, b) => all.slice(a, b);
    // [options, expected] -- the cases of the ListFetch comment block in cacheclient.proto, and more.
    // (The SDK sends an index of 0 as "unbounded", so 0 is only ever used as startIndex.)
    const cases = [
      [undefined, all],
      [{}, all],
      [{ startIndex: 5 }, range(5)],
      [{ startIndex: -5 }, range(-5)],
      [{ endIndex: 5 }, range(0, 5)],
      [{ startIndex: 0, endIndex: 5 }, range(0, 5)],
      [{ endIndex: -5 }, range(0, -5)],
      [{ startIndex: 2, endIndex: 6 }, ['2', '3', '4', '5']],
      [{ startIndex: 2, endIndex: -6 }, ['2', '3']],
      [{ startIndex: -7, endIndex: -2 }, ['3', '4', '5', '6', '7']],
      [{ startIndex: -2, endIndex: -6 }, []],
      [{ startIndex: 6, endIndex: 3 }, []],
      [{ startIndex: 3, endIndex: 3 }, []],
      [{ startIndex: 8, endIndex: 100 }, ['8', '9']],
      [{ startIndex: 10 }, []],
      [{ startIndex: 25 }, []],
      [{ startIndex: -100, endIndex: 3 }, ['0', '1', '2']],
      [{ endIndex: -100 }, []],
      [{ startIndex: -1 }, ['9']],
      [{ startIndex: 9, endIndex: 10 }, ['9']],
    ];
    for (const [opts, expected] of cases) {
      assert.deepEqual(await listValues(l, opts), expected, `listFetch ${JSON.stringify(opts)}`);
    }
    expectType(await c().listFetch(C(), uid('nolist'), { startIndex: 1, endIndex: 3 }), CacheListFetch.Miss,
      'ranged fetch of a missing list');

    const one = uid('list1');
    must(await c().listPushBack(C(), one, 'a'), 'listPushBack');
    assert.deepEqual(await listValues(one, { startIndex: -1, endIndex: 1 }), ['a'], "['a'][-1:1]");
    assert.deepEqual(await listValues(one, { startIndex: 1, endIndex: -1 }), [], "['a'][1:-1]");
    assert.deepEqual(await listValues(one, { endIndex: -1 }), [], "['a'][0:-1]");

    // The SDK itself rejects only startIndex <= 0 <= endIndex <= startIndex, i.e. {0, 0}.
    expectError(await c().listFetch(C(), l, { startIndex: 0, endIndex: 0 }), CacheListFetch.Error, INVALID_ARGUMENT);
  });

  it('listRemoveValue removes every occurrence; removing the only values deletes the list', async () => {
    const l = uid('list');
    must(await c().listConcatenateBack(C(), l, ['n9', 'turn me on', 'n9', 'dead man', 'n9']), 'listConcatenateBack');
    expectType(await c().listRemoveValue(C(), l, 'n9'), CacheListRemoveValue.Success);
    assert.deepEqual(await listValues(l), ['turn me on', 'dead man']);
    expectType(await c().listRemoveValue(C(), l, 'absent'), CacheListRemoveValue.Success);
    assert.deepEqual(await listValues(l), ['turn me on', 'dead man'], 'unchanged');
    expectType(await c().listRemoveValue(C(), uid('nolist'), 'x'), CacheListRemoveValue.Success,
      'remove from a missing list');

    const l2 = uid('list');
    must(await c().listConcatenateBack(C(), l2, ['z', 'z', 'z']), 'listConcatenateBack');
    expectType(await c().listRemoveValue(C(), l2, 'z'), CacheListRemoveValue.Success);
    expectType(await c().listFetch(C(), l2), CacheListFetch.Miss, 'a list emptied by listRemoveValue');
    await expectGone(c(), C(), l2);
  });

  it('listRetain keeps a slice (same index rules as listFetch); an empty slice deletes the list', async () => {
    const all = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    const retain = async (opts) => {
      const l = uid('list');
      must(await c().listConcatenateBack(C(), l, all), 'listConcatenateBack');
      expectType(await c().listRetain(C(), l, opts), CacheListRetain.Success, `listRetain ${JSON.stringify(opts)}`);
      return l;
    };
    assert.deepEqual(await listValues(await retain({ startIndex: 1, endIndex: 2 })), ['1']);
    assert.deepEqual(await listValues(await retain({ startIndex: 2, endIndex: -2 })), ['2', '3', '4', '5', '6', '7']);
    assert.deepEqual(await listValues(await retain({ startIndex: -3 })), ['7', '8', '9']);
    assert.deepEqual(await listValues(await retain({ endIndex: 4 })), ['0', '1', '2', '3']);
    assert.deepEqual(await listValues(await retain({ startIndex: 5, endIndex: 100 })), ['5', '6', '7', '8', '9']);
    assert.deepEqual(await listValues(await retain({})), all, 'unbounded retain keeps everything');

    const gone = await retain({ startIndex: -2, endIndex: -6 });
    expectType(await c().listFetch(C(), gone), CacheListFetch.Miss, 'retain of an empty slice removes all elements');
    await expectGone(c(), C(), gone);

    const missing = uid('nolist');
    expectType(await c().listRetain(C(), missing, { startIndex: 1, endIndex: 3 }), CacheListRetain.Success,
      'retain on a missing list');
    expectType(await c().listFetch(C(), missing), CacheListFetch.Miss, 'retain does not create a list');
  });

  it('binary and empty list elements round-trip; duplicates are kept', async () => {
    const l = uid('list');
    must(await c().listPushBack(C(), l, allBytes()), 'listPushBack');
    must(await c().listPushBack(C(), l, ''), 'listPushBack');
    must(await c().listPushBack(C(), l, allBytes()), 'listPushBack');
    const r = expectType(await c().listFetch(C(), l), CacheListFetch.Hit);
    const v = r.valueListUint8Array().map((b) => Buffer.from(b));
    assert.equal(v.length, 3);
    assert.deepEqual(v[0], Buffer.from(allBytes()));
    assert.equal(v[1].length, 0);
    assert.deepEqual(v[2], Buffer.from(allBytes()));
  });
});

// =============================================================================================
describe('sets', () => {
  it('setAddElement(s), setFetch, setLength: duplicates are stored once', async () => {
    const s = uid('set');
    expectType(await c().setFetch(C(), s), CacheSetFetch.Miss, 'fetch of a missing set');
    expectType(await c().setLength(C(), s), CacheSetLength.Miss, 'length of a missing set');
    expectType(await c().setAddElement(C(), s, 'a'), CacheSetAddElement.Success);
    expectType(await c().setAddElements(C(), s, ['b', 'c', 'a', 'b']), CacheSetAddElements.Success);
    expectType(await c().setAddElement(C(), s, 'c'), CacheSetAddElement.Success);
    assert.deepEqual(await setMembers(s), ['a', 'b', 'c']);
    assert.equal(expectType(await c().setLength(C(), s), CacheSetLength.Hit).length(), 3);

    const r = expectType(await c().setFetch(C(), s), CacheSetFetch.Hit);
    assert.equal(r.valueArrayString().length, 3, 'no duplicate elements in the reply');

    const b = uid('setb');
    must(await c().setAddElements(C(), b, [allBytes(), bytes('x')]), 'setAddElements');
    const got = expectType(await c().setFetch(C(), b), CacheSetFetch.Hit).valueArrayUint8Array().map((e) => Buffer.from(e));
    assert.deepEqual(got.sort(Buffer.compare), [Buffer.from(allBytes()), Buffer.from('x')].sort(Buffer.compare));
  });

  it('setContainsElement(s): Hit with booleans in request order, Miss for a missing set', async () => {
    const s = uid('set');
    expectType(await c().setContainsElement(C(), s, 'a'), CacheSetContainsElement.Miss);
    expectType(await c().setContainsElements(C(), s, ['a', 'b']), CacheSetContainsElements.Miss);
    must(await c().setAddElements(C(), s, ['a', 'b', 'c']), 'setAddElements');
    assert.equal(expectType(await c().setContainsElement(C(), s, 'b'), CacheSetContainsElement.Hit).containsElement(), true);
    assert.equal(expectType(await c().setContainsElement(C(), s, 'z'), CacheSetContainsElement.Hit).containsElement(), false);
    const r = expectType(await c().setContainsElements(C(), s, ['z', 'a', 'y', 'c']), CacheSetContainsElements.Hit);
    assert.deepEqual({ ...r.containsElements() }, { z: false, a: true, y: false, c: true });
  });

  it('setRemoveElement(s); removing the last element deletes the set', async () => {
    const s = uid('set');
    expectType(await c().setRemoveElement(C(), s, 'a'), CacheSetRemoveElement.Success, 'remove from a missing set');
    must(await c().setAddElements(C(), s, ['a', 'b', 'c', 'd']), 'setAddElements');
    expectType(await c().setRemoveElement(C(), s, 'a'), CacheSetRemoveElement.Success);
    expectType(await c().setRemoveElements(C(), s, ['b', 'zz']), CacheSetRemoveElements.Success);
    assert.deepEqual(await setMembers(s), ['c', 'd']);
    expectType(await c().setRemoveElements(C(), s, ['c', 'd']), CacheSetRemoveElements.Success);
    expectType(await c().setFetch(C(), s), CacheSetFetch.Miss, 'fetch after the last element is removed');
    expectType(await c().setLength(C(), s), CacheSetLength.Miss);
    await expectGone(c(), C(), s, 'emptied set');
  });

  it('setSample: all distinct members when the limit exceeds the size, exactly `limit` distinct members otherwise', async () => {
    const s = uid('set');
    const members = ['m1', 'm2', 'm3', 'm4', 'm5'];
    expectType(await c().setSample(C(), s, 3), CacheSetSample.Miss, 'sample of a missing set');
    must(await c().setAddElements(C(), s, members), 'setAddElements');

    const big = expectType(await c().setSample(C(), s, 10), CacheSetSample.Hit).valueArrayString();
    assert.deepEqual(sorted(big), members, 'limit 10 on 5 members');
    const exact = expectType(await c().setSample(C(), s, 5), CacheSetSample.Hit).valueArrayString();
    assert.deepEqual(sorted(exact), members, 'limit == size');

    for (let i = 0; i < 5; i++) {
      const small = expectType(await c().setSample(C(), s, 3), CacheSetSample.Hit).valueArrayString();
      assert.equal(small.length, 3, `limit 3 gives 3 elements: ${small}`);
      assert.equal(new Set(small).size, 3, `distinct: ${small}`);
      for (const m of small) assert.ok(members.includes(m), `${m} is a member`);
    }
    assert.deepEqual(await setMembers(s), members, 'sampling does not remove');
  });

  it('setPop(count): removes and returns `count` members; popping everything deletes the set', async () => {
    const s = uid('set');
    const members = ['p1', 'p2', 'p3', 'p4', 'p5'];
    expectType(await c().setPop(C(), s, 1), CacheSetPop.Miss, 'pop of a missing set');
    must(await c().setAddElements(C(), s, members), 'setAddElements');

    const popped = expectType(await c().setPop(C(), s, 2), CacheSetPop.Hit).valueArrayString();
    assert.equal(popped.length, 2);
    assert.equal(new Set(popped).size, 2);
    const left = members.filter((m) => !popped.includes(m));
    assert.equal(left.length, 3, `popped ${popped} are members`);
    assert.deepEqual(await setMembers(s), left, 'the popped members are gone, the rest stay');

    const rest = expectType(await c().setPop(C(), s, 10), CacheSetPop.Hit).valueArrayString();
    assert.deepEqual(sorted(rest), left, 'count larger than the set pops all of it');
    expectType(await c().setFetch(C(), s), CacheSetFetch.Miss, 'fetch after popping everything');
    expectType(await c().setPop(C(), s, 1), CacheSetPop.Miss);
    await expectGone(c(), C(), s);
  });
});

// =============================================================================================
describe('sorted sets', () => {
  // The data set of the SDK's own sorted-set integration tests.
  const DATA = { bam: 1000, foo: 1, taco: 90210, bar: 2, burrito: 9000, baz: 42, habanero: 68, jalapeno: 1_000_000 };
  const ASC = zElems({ foo: 1, bar: 2, baz: 42, habanero: 68, bam: 1000, burrito: 9000, taco: 90210, jalapeno: 1_000_000 });
  const DESC = [...ASC].reverse();
  let z; // a sorted set holding DATA, shared by the read-only tests
  const zData = async () => {
    if (!z) {
      z = uid('zdata');
      await zPut(z, DATA);
    }
    return z;
  };

  it('sortedSetPutElement(s) with Map, Record and pairs; a put updates the score', async () => {
    const s = uid('zset');
    expectType(await c().sortedSetPutElement(C(), s, 'a', 5), CacheSortedSetPutElement.Success);
    await zPut(s, new Map([['b', 1], ['c', 3]]));
    await zPut(s, { d: -2.5 });
    await zPut(s, [['e', 4], ['a', 0.5]]);
    assert.deepEqual(await zByRank(s), zElems({ d: -2.5, a: 0.5, b: 1, c: 3, e: 4 }));
    expectType(await c().sortedSetPutElement(C(), s, 'd', 10), CacheSortedSetPutElement.Success);
    assert.deepEqual(await zByRank(s), zElems({ a: 0.5, b: 1, c: 3, e: 4, d: 10 }));
  });

  it('sortedSetFetchByRank: start/end ranks incl. negative, out of range, DESCENDING; Miss on a missing set', async () => {
    const s = await zData();
    const cases = [
      [undefined, ASC],
      [{ startRank: 4 }, ASC.slice(4)],
      [{ endRank: 3 }, ASC.slice(0, 3)],
      [{ startRank: 1, endRank: 5 }, ASC.slice(1, 5)],
      [{ startRank: 10 }, []],
      [{ startRank: 5, endRank: 100 }, ASC.slice(5)],
      [{ startRank: -5 }, ASC.slice(-5)],
      [{ endRank: -2 }, ASC.slice(0, -2)],
      [{ startRank: -5, endRank: -2 }, ASC.slice(-5, -2)],
      [{ startRank: -100, endRank: 2 }, ASC.slice(0, 2)],
      [{ order: SortedSetOrder.Ascending }, ASC],
      [{ order: SortedSetOrder.Descending }, DESC],
      [{ order: SortedSetOrder.Descending, startRank: 5 }, DESC.slice(5)],
      [{ order: SortedSetOrder.Descending, endRank: 3 }, DESC.slice(0, 3)],
      [{ order: SortedSetOrder.Descending, startRank: 3, endRank: 5 }, DESC.slice(3, 5)],
      [{ order: SortedSetOrder.Descending, startRank: -3 }, DESC.slice(-3)],
      [{ order: SortedSetOrder.Descending, startRank: -4, endRank: -1 }, DESC.slice(-4, -1)],
    ];
    for (const [opts, expected] of cases) {
      assert.deepEqual(await zByRank(s, opts), expected, `fetchByRank ${JSON.stringify(opts)}`);
    }
    expectType(await c().sortedSetFetchByRank(C(), uid('noz')), CacheSortedSetFetch.Miss);
  });

  it('sortedSetFetchByScore: inclusive min/max, offset, count, order; an empty match is a Hit with no elements', async () => {
    const s = await zData();
    const cases = [
      [undefined, ASC],
      [{ minScore: 100 }, ASC.slice(4)],
      [{ maxScore: 1000 }, ASC.slice(0, 5)],
      [{ minScore: 42, maxScore: 9000 }, ASC.slice(2, 6)],
      [{ minScore: 42.5, maxScore: 8999.5 }, ASC.slice(3, 5)],
      [{ minScore: 2_000_000 }, []],
      [{ maxScore: 0 }, []],
      [{ minScore: -1e9, maxScore: 1e9 }, ASC],
      [{ offset: 2 }, ASC.slice(2)],
      [{ count: 3 }, ASC.slice(0, 3)],
      [{ offset: 2, count: 3 }, ASC.slice(2, 5)],
      [{ offset: 7, count: 5 }, ASC.slice(7)],
      [{ offset: 8 }, []],
      [{ offset: 100, count: 1 }, []],
      [{ order: SortedSetOrder.Descending }, DESC],
      [{ order: SortedSetOrder.Descending, minScore: 2, maxScore: 1000 }, DESC.slice(3, 7)],
      [{ order: SortedSetOrder.Descending, offset: 1, count: 2 }, DESC.slice(1, 3)],
      [{ order: SortedSetOrder.Descending, minScore: 0, maxScore: 800, offset: 2, count: 10 }, DESC.slice(6)],
    ];
    for (const [opts, expected] of cases) {
      assert.deepEqual(await zByScore(s, opts), expected, `fetchByScore ${JSON.stringify(opts)}`);
    }
    expectType(await c().sortedSetFetchByScore(C(), uid('noz'), { minScore: 1 }), CacheSortedSetFetch.Miss);
  });

  it('equal scores are ordered by value (bytewise), reversed in DESCENDING order', async () => {
    const s = uid('zties');
    await zPut(s, { b: 1, a: 1, c: 1, d: 0, B: 1 });
    const order = async (opts) => (await zByRank(s, opts)).map((e) => e.value);
    assert.deepEqual(await order(), ['d', 'B', 'a', 'b', 'c']);
    assert.deepEqual(await order({ order: SortedSetOrder.Descending }), ['c', 'b', 'a', 'B', 'd']);
    assert.deepEqual((await zByScore(s, { minScore: 1, maxScore: 1 })).map((e) => e.value), ['B', 'a', 'b', 'c']);
    const rank = async (v, order) => expectType(await c().sortedSetGetRank(C(), s, v, { order }),
      CacheSortedSetGetRank.Hit, `rank of ${v}`).rank();
    assert.equal(await rank('b'), 3);
    assert.equal(await rank('b', SortedSetOrder.Descending), 1);
  });

  it('sortedSetGetScore(s): Hit/Miss parts; a missing set is a Miss', async () => {
    const s = uid('zset');
    await zPut(s, { foo: 42, bar: 84, baz: 90210.5, neg: -7, zero: 0 });
    const h = expectType(await c().sortedSetGetScore(C(), s, 'baz'), CacheSortedSetGetScore.Hit);
    assert.equal(h.score(), 90210.5);
    assert.equal(h.valueString(), 'baz');
    assert.equal(expectType(await c().sortedSetGetScore(C(), s, 'zero'), CacheSortedSetGetScore.Hit).score(), 0,
      'a score of 0 is a Hit (proto3 omits the 0 on the wire)');
    const m = expectType(await c().sortedSetGetScore(C(), s, 'taco'), CacheSortedSetGetScore.Miss);
    assert.equal(m.valueString(), 'taco');
    expectType(await c().sortedSetGetScore(C(), uid('noz'), 'foo'), CacheSortedSetGetScore.Miss, 'missing set');

    const r = expectType(await c().sortedSetGetScores(C(), s, ['bar', 'taco', 'neg', 'foo']), CacheSortedSetGetScores.Hit);
    const parts = r.responses().map((p) => (p instanceof CacheSortedSetGetScore.Hit
      ? ['hit', p.valueString(), p.score()]
      : p instanceof CacheSortedSetGetScore.Miss ? ['miss', p.valueString()] : ['other', p.toString()]));
    assert.deepEqual(parts, [['hit', 'bar', 84], ['miss', 'taco'], ['hit', 'neg', -7], ['hit', 'foo', 42]]);
    assert.deepEqual({ ...r.valueRecord() }, { bar: 84, neg: -7, foo: 42 });
    expectType(await c().sortedSetGetScores(C(), uid('noz'), ['a', 'b']), CacheSortedSetGetScores.Miss);
  });

  it('sortedSetIncrementScore: creates set and member, adds to an existing score, negative and fractional amounts', async () => {
    const s = uid('zset');
    const inc = async (v, amount) => expectType(await c().sortedSetIncrementScore(C(), s, v, amount),
      CacheSortedSetIncrementScore.Success, `increment ${v} by ${amount}`).score();
    assert.equal(await inc('foo'), 1, 'default amount 1 on a new set');
    assert.equal(await inc('bar', 42), 42);
    assert.equal(await inc('foo', 10), 11);
    assert.equal(await inc('foo', -11.5), -0.5);
    assert.equal(await inc('bar', 0.25), 42.25);
    assert.deepEqual(await zByRank(s), zElems({ foo: -0.5, bar: 42.25 }));
  });

  it('sortedSetRemoveElement(s); removing the last member deletes the set', async () => {
    const s = uid('zset');
    expectType(await c().sortedSetRemoveElement(C(), s, 'x'), CacheSortedSetRemoveElement.Success, 'missing set');
    await zPut(s, { a: 1, b: 2, c: 3, d: 4 });
    expectType(await c().sortedSetRemoveElement(C(), s, 'b'), CacheSortedSetRemoveElement.Success);
    expectType(await c().sortedSetRemoveElements(C(), s, ['d', 'nope']), CacheSortedSetRemoveElements.Success);
    assert.deepEqual(await zByRank(s), zElems({ a: 1, c: 3 }));
    expectType(await c().sortedSetRemoveElements(C(), s, ['a', 'c']), CacheSortedSetRemoveElements.Success);
    expectType(await c().sortedSetFetchByRank(C(), s), CacheSortedSetFetch.Miss, 'fetch after removing every member');
    expectType(await c().sortedSetLength(C(), s), CacheSortedSetLength.Miss);
    await expectGone(c(), C(), s, 'emptied sorted set');
  });

  it('sortedSetGetRank: 0-based, ascending and descending; Miss for a missing member or set', async () => {
    const s = uid('zset');
    await zPut(s, { foo: 42, bar: 84, baz: 90210 });
    const rank = async (v, order) => expectType(await c().sortedSetGetRank(C(), s, v, order ? { order } : undefined),
      CacheSortedSetGetRank.Hit, `rank of ${v} (${order ?? 'default'})`).rank();
    assert.equal(await rank('foo'), 0);
    assert.equal(await rank('bar'), 1);
    assert.equal(await rank('baz'), 2);
    assert.equal(await rank('foo', SortedSetOrder.Ascending), 0);
    assert.equal(await rank('foo', SortedSetOrder.Descending), 2);
    assert.equal(await rank('baz', SortedSetOrder.Descending), 0);
    expectType(await c().sortedSetGetRank(C(), s, 'taco'), CacheSortedSetGetRank.Miss, 'missing member');
    expectType(await c().sortedSetGetRank(C(), uid('noz'), 'foo'), CacheSortedSetGetRank.Miss, 'missing set');
  });

  it('sortedSetLength and sortedSetLengthByScore (inclusive bounds); no match and a missing set are Misses', async () => {
    const s = uid('zset');
    expectType(await c().sortedSetLength(C(), s), CacheSortedSetLength.Miss);
    expectType(await c().sortedSetLengthByScore(C(), s), CacheSortedSetLengthByScore.Miss);
    await zPut(s, { foo: 42, bar: 42, baz: 42, apple: 1, banana: 1, water: 555, air: 555, earth: 555, fire: 555 });
    assert.equal(expectType(await c().sortedSetLength(C(), s), CacheSortedSetLength.Hit).length(), 9);
    const lbs = async (opts) => expectType(await c().sortedSetLengthByScore(C(), s, opts),
      CacheSortedSetLengthByScore.Hit, `lengthByScore ${JSON.stringify(opts)}`).length();
    assert.equal(await lbs(), 9);
    assert.equal(await lbs({ minScore: 42 }), 7);
    assert.equal(await lbs({ maxScore: 42 }), 5);
    assert.equal(await lbs({ minScore: 1, maxScore: 1 }), 2);
    assert.equal(await lbs({ minScore: 2, maxScore: 554.5 }), 3);
    assert.equal(await lbs({ minScore: -1000, maxScore: 1000 }), 9);
    // found with length 0 is reported by the SDK as a Miss
    expectType(await c().sortedSetLengthByScore(C(), s, { minScore: 600 }), CacheSortedSetLengthByScore.Miss,
      'no member in range');
  });

  it('sortedSetUnionStore: weights, aggregate SUM (default) / MIN / MAX, missing sources, overwrite, empty result deletes', async () => {
    const A = uid('zA');
    const B = uid('zB');
    await zPut(A, { a: 1, b: 2, c: 3 });
    await zPut(B, { b: 10, c: 20, d: 30 });
    const union = async (sources, opts, expectedLength) => {
      const dest = uid('zU');
      const r = expectType(await c().sortedSetUnionStore(C(), dest, sources, opts), CacheSortedSetUnionStore.Success,
        `unionStore ${JSON.stringify(sources)} ${JSON.stringify(opts ?? {})}`);
      assert.equal(r.length(), expectedLength, 'length of the result');
      return dest;
    };
    const src = (name, weight = 1) => ({ sortedSetName: name, weight });
    const scores = async (name) => Object.fromEntries((await zByRank(name)).map((e) => [e.value, e.score]));

    assert.deepEqual(await scores(await union([src(A), src(B)], undefined, 4)), { a: 1, b: 12, c: 23, d: 30 }, 'SUM');
    assert.deepEqual(await scores(await union([src(A, 2), src(B, 0.5)], { aggregate: SortedSetAggregate.SUM }, 4)),
      { a: 2, b: 9, c: 16, d: 15 }, 'weighted SUM');
    assert.deepEqual(await scores(await union([src(A), src(B)], { aggregate: SortedSetAggregate.MIN }, 4)),
      { a: 1, b: 2, c: 3, d: 30 }, 'MIN');
    assert.deepEqual(await scores(await union([src(A), src(B)], { aggregate: SortedSetAggregate.MAX }, 4)),
      { a: 1, b: 10, c: 20, d: 30 }, 'MAX');
    assert.deepEqual(await scores(await union([src(A), src(B, -1)], undefined, 4)),
      { d: -30, c: -17, b: -8, a: 1 }, 'negative weight');
    assert.deepEqual(await scores(await union([src(A, 0), src(B, 1)], { aggregate: SortedSetAggregate.MAX }, 4)),
      { a: 0, b: 10, c: 20, d: 30 }, 'zero weight');
    assert.deepEqual(await scores(await union([src(A), src(uid('nozset'), 3)], undefined, 3)),
      { a: 1, b: 2, c: 3 }, 'a missing source is an empty set');

    const empty = await union([src(uid('noz1')), src(uid('noz2'))], undefined, 0);
    expectType(await c().sortedSetFetchByRank(C(), empty), CacheSortedSetFetch.Miss, 'empty union creates nothing');

    // the destination is overwritten (not merged) and is a source only when listed
    const D = uid('zD');
    await zPut(D, { zzz: 5, a: 100 });
    expectType(await c().sortedSetUnionStore(C(), D, [src(A)]), CacheSortedSetUnionStore.Success);
    assert.deepEqual(await scores(D), { a: 1, b: 2, c: 3 }, 'destination replaced by the union');
    const r = expectType(await c().sortedSetUnionStore(C(), D, [src(D), src(B)]), CacheSortedSetUnionStore.Success);
    assert.equal(r.length(), 4);
    assert.deepEqual(await scores(D), { a: 1, b: 12, c: 23, d: 30 }, 'destination listed as a source');
    const r2 = expectType(await c().sortedSetUnionStore(C(), D, [src(uid('noz3'))]), CacheSortedSetUnionStore.Success);
    assert.equal(r2.length(), 0);
    expectType(await c().sortedSetFetchByRank(C(), D), CacheSortedSetFetch.Miss, 'an empty union deletes the destination');
    await expectGone(c(), C(), D);

    assert.deepEqual(await scores(A), { a: 1, b: 2, c: 3 }, 'sources are untouched');
    assert.deepEqual(await scores(B), { b: 10, c: 20, d: 30 });
  });

  it('sortedSetUnionStore with no sources is INVALID_ARGUMENT, as Momento answers, and stores nothing', async () => {
    const D = uid('zNoSrc');
    await zPut(D, { keep: 1 });
    expectError(await c().sortedSetUnionStore(C(), D, []), CacheSortedSetUnionStore.Error, INVALID_ARGUMENT,
                'union of no sources');
    assert.deepEqual((await zByRank(D)).map((e) => [e.value, e.score]), [['keep', 1]], 'the destination is untouched');
  });

  it('binary members, fractional, negative and large scores round-trip exactly', async () => {
    const s = uid('zset');
    await zPut(s, new Map([[allBytes(), 1.5], [bytes('x'), -1e300], [bytes('y'), 1e300], [bytes('z'), 0.1 + 0.2]]));
    const r = expectType(await c().sortedSetFetchByRank(C(), s), CacheSortedSetFetch.Hit);
    const got = r.valueArrayUint8Elements().map((e) => [Buffer.from(e.value), e.score]);
    assert.deepEqual(got, [[Buffer.from('x'), -1e300], [Buffer.from('z'), 0.1 + 0.2], [Buffer.from(allBytes()), 1.5],
      [Buffer.from('y'), 1e300]]);
  });
});

// =============================================================================================
describe('collection TTLs (CollectionTtl)', () => {
  // Each writer creates or updates the collection `name` with the given CollectionTtl.
  const writers = {
    dictionarySetField: (n, ttl) => c().dictionarySetField(C(), n, 'f', 'v', { ttl }),
    dictionarySetFields: (n, ttl) => c().dictionarySetFields(C(), n, { f: 'v', g: 'w' }, { ttl }),
    dictionaryIncrement: (n, ttl) => c().dictionaryIncrement(C(), n, 'count', 1, { ttl }),
    listPushFront: (n, ttl) => c().listPushFront(C(), n, 'v', { ttl }),
    listPushBack: (n, ttl) => c().listPushBack(C(), n, 'v', { ttl }),
    listConcatenateFront: (n, ttl) => c().listConcatenateFront(C(), n, ['v', 'w'], { ttl }),
    listConcatenateBack: (n, ttl) => c().listConcatenateBack(C(), n, ['v', 'w'], { ttl }),
    setAddElement: (n, ttl) => c().setAddElement(C(), n, 'v', { ttl }),
    setAddElements: (n, ttl) => c().setAddElements(C(), n, ['v', 'w'], { ttl }),
    sortedSetPutElement: (n, ttl) => c().sortedSetPutElement(C(), n, 'v', 1, { ttl }),
    sortedSetPutElements: (n, ttl) => c().sortedSetPutElements(C(), n, { v: 1, w: 2 }, { ttl }),
    sortedSetIncrementScore: (n, ttl) => c().sortedSetIncrementScore(C(), n, 'v', 1, { ttl }),
  };
  const ok = must;

  for (const [method, write] of Object.entries(writers)) {
    it(`${method}: created with ttl 60 s; a no-refresh write keeps it; a refreshing write sets the new one`, async () => {
      const n = uid(`ttl-${method}`);
      ok(await write(n, CollectionTtl.of(60)), `${method} (create)`);
      await expectTtlAbout(c(), C(), n, 60, 'created with CollectionTtl.of(60)');
      ok(await write(n, CollectionTtl.of(600).withNoRefreshTtlOnUpdates()), `${method} (no refresh)`);
      await expectTtlAbout(c(), C(), n, 60, 'after a write with CollectionTtl.of(600).withNoRefreshTtlOnUpdates()');
      ok(await write(n, CollectionTtl.of(600)), `${method} (refresh)`);
      await expectTtlAbout(c(), C(), n, 600, 'after a write with CollectionTtl.of(600)');
      ok(await write(n, new CollectionTtl(null, true)), `${method} (client default)`);
      await expectTtlAbout(c(), C(), n, DEFAULT_TTL_SECONDS, 'after a write with the client default TTL');
    });
  }

  it('a new collection written without refresh still gets the given TTL; no ttl option uses the client default', async () => {
    const a = uid('ttl-noref');
    expectType(await c().listPushBack(C(), a, 'v', { ttl: CollectionTtl.of(120).withNoRefreshTtlOnUpdates() }),
      CacheListPushBack.Success);
    await expectTtlAbout(c(), C(), a, 120, 'created with a no-refresh CollectionTtl');
    const b = uid('ttl-default');
    expectType(await c().dictionarySetField(C(), b, 'f', 'v'), CacheDictionarySetField.Success);
    await expectTtlAbout(c(), C(), b, DEFAULT_TTL_SECONDS, 'no ttl option');
    const z = uid('ttl-default-z');
    await zPut(z, { a: 1 });
    await expectTtlAbout(c(), C(), z, DEFAULT_TTL_SECONDS, 'no ttl option (sorted set)');
  });

  it('listRetain refreshes the TTL only when asked', async () => {
    const l = uid('ttl-retain');
    must(await c().listConcatenateBack(C(), l, ['0', '1', '2', '3'], { ttl: CollectionTtl.of(60) }), 'listConcatenateBack');
    expectType(await c().listRetain(C(), l, { startIndex: 1, ttl: CollectionTtl.of(600).withNoRefreshTtlOnUpdates() }),
      CacheListRetain.Success);
    await expectTtlAbout(c(), C(), l, 60, 'no-refresh retain');
    expectType(await c().listRetain(C(), l, { startIndex: 1, ttl: CollectionTtl.of(600) }), CacheListRetain.Success);
    await expectTtlAbout(c(), C(), l, 600, 'refreshing retain');
    assert.deepEqual(await listValues(l), ['2', '3']);
  });

  it('sortedSetUnionStore gives the destination the requested TTL', async () => {
    const A = uid('ttl-zA');
    await zPut(A, { a: 1 }, { ttl: CollectionTtl.of(900) });
    const D = uid('ttl-zD');
    expectType(await c().sortedSetUnionStore(C(), D, [{ sortedSetName: A, weight: 1 }], { ttl: CollectionTtl.of(77) }),
      CacheSortedSetUnionStore.Success);
    await expectTtlAbout(c(), C(), D, 77, 'union destination');
    await zPut(D, { b: 2 }, { ttl: CollectionTtl.of(900).withNoRefreshTtlOnUpdates() });
    await expectTtlAbout(c(), C(), D, 77, 'no-refresh put keeps the union TTL');
  });

  it('collections with a 1 s TTL expire (fetch Miss, itemGetType Miss)', async () => {
    const ttl = CollectionTtl.of(1);
    const d = uid('exp-d');
    const l = uid('exp-l');
    const s = uid('exp-s');
    const z = uid('exp-z');
    expectType(await c().dictionarySetField(C(), d, 'f', 'v', { ttl }), CacheDictionarySetField.Success);
    expectType(await c().listPushBack(C(), l, 'v', { ttl }), CacheListPushBack.Success);
    expectType(await c().setAddElement(C(), s, 'v', { ttl }), CacheSetAddElement.Success);
    expectType(await c().sortedSetPutElement(C(), z, 'v', 1, { ttl }), CacheSortedSetPutElement.Success);
    expectType(await c().listFetch(C(), l), CacheListFetch.Hit, 'alive before the TTL');
    await sleep(1600);
    expectType(await c().dictionaryFetch(C(), d), CacheDictionaryFetch.Miss, 'dictionary after expiry');
    expectType(await c().listFetch(C(), l), CacheListFetch.Miss, 'list after expiry');
    expectType(await c().setFetch(C(), s), CacheSetFetch.Miss, 'set after expiry');
    expectType(await c().sortedSetFetchByRank(C(), z), CacheSortedSetFetch.Miss, 'sorted set after expiry');
    for (const k of [d, l, s, z]) await expectGone(c(), C(), k, 'expired collection');
    // a write after expiry starts a new collection
    expectType(await c().listPushBack(C(), l, 'w'), CacheListPushBack.Success);
    assert.deepEqual(await listValues(l), ['w']);
  });
});

// =============================================================================================
describe('types: itemGetType and wrong-type errors', () => {
  it('itemGetType answers SCALAR / DICTIONARY / LIST / SET / SORTED_SET', async () => {
    const k = uid('t-scalar');
    const d = uid('t-dict');
    const l = uid('t-list');
    const s = uid('t-set');
    const z = uid('t-zset');
    expectType(await c().set(C(), k, 'v'), CacheSet.Success);
    must(await c().dictionarySetField(C(), d, 'f', 'v'), 'dictionarySetField');
    must(await c().listPushBack(C(), l, 'v'), 'listPushBack');
    must(await c().setAddElement(C(), s, 'v'), 'setAddElement');
    must(await c().sortedSetPutElement(C(), z, 'v', 1), 'sortedSetPutElement');
    assert.equal(await itemType(k), 'SCALAR', 'itemGetType should answer SCALAR');
    assert.equal(await itemType(d), 'DICTIONARY', 'itemGetType should answer DICTIONARY');
    assert.equal(await itemType(l), 'LIST', 'itemGetType should answer LIST');
    assert.equal(await itemType(s), 'SET', 'itemGetType should answer SET');
    assert.equal(await itemType(z), 'SORTED_SET', 'itemGetType should answer SORTED_SET');
  });

  it('collection calls on a dictionary key fail with FAILED_PRECONDITION and leave it untouched', async () => {
    const d = uid('wt-dict');
    must(await c().dictionarySetFields(C(), d, { a: '1', b: '2' }), 'dictionarySetFields');
    const fp = (r, cls, what) => {
      const e = expectError(r, cls, FAILED_PRECONDITION, what);
      assert.ok(e.innerException() instanceof FailedPreconditionError, `${what}: FailedPreconditionError`);
    };
    fp(await c().listPushBack(C(), d, 'x'), CacheListPushBack.Error, 'listPushBack on a dictionary');
    fp(await c().listFetch(C(), d), CacheListFetch.Error, 'listFetch on a dictionary');
    fp(await c().listPopFront(C(), d), CacheListPopFront.Error, 'listPopFront on a dictionary');
    fp(await c().setAddElement(C(), d, 'x'), CacheSetAddElement.Error, 'setAddElement on a dictionary');
    fp(await c().setFetch(C(), d), CacheSetFetch.Error, 'setFetch on a dictionary');
    fp(await c().sortedSetPutElement(C(), d, 'x', 1), CacheSortedSetPutElement.Error, 'sortedSetPutElement on a dictionary');
    fp(await c().sortedSetFetchByRank(C(), d), CacheSortedSetFetch.Error, 'sortedSetFetchByRank on a dictionary');
    fp(await c().get(C(), d), CacheGet.Error, 'get on a dictionary');
    fp(await c().increment(C(), d, 1), CacheIncrement.Error, 'increment on a dictionary');
    assert.deepEqual(await dictRecord(d), { a: '1', b: '2' }, 'the dictionary is untouched');
    assert.equal(await itemType(d), 'DICTIONARY', 'itemGetType should answer DICTIONARY');
  });

  it('dictionary, set and scalar reads on a list key fail with FAILED_PRECONDITION and leave it untouched', async () => {
    const l = uid('wt-list');
    must(await c().listConcatenateBack(C(), l, ['a', 'b']), 'listConcatenateBack');
    for (const [r, cls, what] of [
      [await c().get(C(), l), CacheGet.Error, 'get on a list'],
      [await c().dictionaryGetField(C(), l, 'a'), CacheDictionaryGetField.Error, 'dictionaryGetField on a list'],
      [await c().dictionarySetField(C(), l, 'a', 'b'), CacheDictionarySetField.Error, 'dictionarySetField on a list'],
      [await c().dictionaryIncrement(C(), l, 'a', 1), CacheDictionaryIncrement.Error, 'dictionaryIncrement on a list'],
      [await c().setContainsElement(C(), l, 'a'), CacheSetContainsElement.Error, 'setContainsElement on a list'],
      [await c().sortedSetGetScore(C(), l, 'a'), CacheSortedSetGetScore.Error, 'sortedSetGetScore on a list'],
      [await c().sortedSetGetRank(C(), l, 'a'), CacheSortedSetGetRank.Error, 'sortedSetGetRank on a list'],
    ]) {
      expectError(r, cls, FAILED_PRECONDITION, what);
    }
    assert.deepEqual(await listValues(l), ['a', 'b'], 'the list is untouched');
  });

  it('collection calls on a scalar key fail with FAILED_PRECONDITION; set and delete replace or remove any type', async () => {
    const k = uid('wt-scalar');
    expectType(await c().set(C(), k, 'plain'), CacheSet.Success);
    expectError(await c().dictionarySetField(C(), k, 'f', 'v'), CacheDictionarySetField.Error, FAILED_PRECONDITION);
    expectError(await c().listPushFront(C(), k, 'v'), CacheListPushFront.Error, FAILED_PRECONDITION);
    expectError(await c().setAddElements(C(), k, ['v']), CacheSetAddElements.Error, FAILED_PRECONDITION);
    expectError(await c().sortedSetIncrementScore(C(), k, 'v', 1), CacheSortedSetIncrementScore.Error, FAILED_PRECONDITION);
    expectError(await c().dictionaryFetch(C(), k), CacheDictionaryFetch.Error, FAILED_PRECONDITION);
    assert.equal(expectType(await c().get(C(), k), CacheGet.Hit).valueString(), 'plain', 'the scalar is untouched');

    // a union whose source is not a sorted set fails and leaves the destination alone
    const D = uid('wt-zD');
    await zPut(D, { keep: 1 });
    expectError(await c().sortedSetUnionStore(C(), D, [{ sortedSetName: k, weight: 1 }]), CacheSortedSetUnionStore.Error,
      FAILED_PRECONDITION, 'unionStore with a scalar source');
    assert.deepEqual(await zByRank(D), zElems({ keep: 1 }));

    const l = uid('wt-over');
    must(await c().listPushBack(C(), l, 'v'), 'listPushBack');
    expectType(await c().set(C(), l, 'now a scalar'), CacheSet.Success, 'set over a list');
    assert.equal(await itemType(l), 'SCALAR', 'itemGetType should answer SCALAR');
    assert.equal(expectType(await c().get(C(), l), CacheGet.Hit).valueString(), 'now a scalar');
  });
});

// =============================================================================================
describe('RESP <-> SDK on the same cache', () => {
  it('a dictionary written by the SDK is a hash for RESP (HGETALL, HGET, TYPE, PTTL, HINCRBY, HSET)', async () => {
    const resp = await suite.respClient();
    const d = uid('x-dict');
    must(await c().dictionarySetFields(C(), d, { f1: 'v1', f2: 'v2', f3: '10' }, { ttl: CollectionTtl.of(60) }), 'dictionarySetFields');
    assert.deepEqual({ ...(await resp.hGetAll(d)) }, { f1: 'v1', f2: 'v2', f3: '10' });
    assert.equal(await resp.hGet(d, 'f2'), 'v2');
    assert.equal(await resp.type(d), 'hash');
    const pttl = await resp.pTTL(d);
    assert.ok(pttl > 55000 && pttl <= 60000, `PTTL ${pttl}`);
    assert.equal(await resp.hIncrBy(d, 'f3', 5), 15);
    assert.equal(await resp.hSet(d, 'f4', 'from-resp'), 1);
    assert.deepEqual(await dictRecord(d), { f1: 'v1', f2: 'v2', f3: '15', f4: 'from-resp' });
    assert.equal(expectType(await c().dictionaryIncrement(C(), d, 'f3', 1), CacheDictionaryIncrement.Success).value(), 16);
  });

  it('a sorted set written by RESP ZADD is fetched by the SDK with scores, ranks and lengths', async () => {
    const resp = await suite.respClient();
    const z = uid('x-zset');
    assert.equal(await resp.zAdd(z, [
      { score: 3, value: 'c' }, { score: 1, value: 'a' }, { score: 2.5, value: 'b' }, { score: -4, value: 'm' },
    ]), 4);
    assert.deepEqual(await zByRank(z), zElems({ m: -4, a: 1, b: 2.5, c: 3 }));
    assert.deepEqual(await zByScore(z, { minScore: 0, order: SortedSetOrder.Descending }), zElems({ c: 3, b: 2.5, a: 1 }));
    assert.equal(expectType(await c().sortedSetGetRank(C(), z, 'b'), CacheSortedSetGetRank.Hit).rank(), 2);
    assert.equal(expectType(await c().sortedSetGetScore(C(), z, 'm'), CacheSortedSetGetScore.Hit).score(), -4);
    assert.equal(expectType(await c().sortedSetLength(C(), z), CacheSortedSetLength.Hit).length(), 4);
    assert.equal(await itemType(z), 'SORTED_SET', 'itemGetType should answer SORTED_SET');
    // and back: an SDK increment is visible to ZSCORE
    must(await c().sortedSetIncrementScore(C(), z, 'a', 0.5), 'sortedSetIncrementScore');
    assert.equal(await resp.zScore(z, 'a'), 1.5);
  });

  it('lists and sets cross both ways (RPUSH / LRANGE, SADD / SMEMBERS, TYPE)', async () => {
    const resp = await suite.respClient();
    const l = uid('x-list');
    must(await c().listConcatenateBack(C(), l, ['a', 'b']), 'listConcatenateBack');
    assert.equal(await resp.rPush(l, ['c', 'd']), 4);
    assert.equal(await resp.lPush(l, 'z'), 5);
    assert.deepEqual(await listValues(l), ['z', 'a', 'b', 'c', 'd']);
    assert.deepEqual(await resp.lRange(l, 0, -1), ['z', 'a', 'b', 'c', 'd']);
    assert.equal(await resp.type(l), 'list');

    const s = uid('x-set');
    must(await c().setAddElements(C(), s, ['x', 'y']), 'setAddElements');
    assert.equal(await resp.sAdd(s, ['y', 'z']), 1);
    assert.deepEqual(sorted(await resp.sMembers(s)), ['x', 'y', 'z']);
    assert.deepEqual(await setMembers(s), ['x', 'y', 'z']);
    assert.equal(await resp.type(s), 'set');

    const h = uid('x-hash');
    assert.equal(await resp.hSet(h, { a: '1', b: '2' }), 2);
    assert.deepEqual(await dictRecord(h), { a: '1', b: '2' });
    assert.equal(await itemType(h), 'DICTIONARY', 'itemGetType should answer DICTIONARY');
  });

  it('RESP answers WRONGTYPE on an SDK collection, and the SDK FAILED_PRECONDITION on a RESP hash', async () => {
    const resp = await suite.respClient();
    const l = uid('x-wt');
    must(await c().listPushBack(C(), l, 'v'), 'listPushBack');
    await assert.rejects(resp.get(l), /WRONGTYPE/);
    const h = uid('x-wt-h');
    await resp.hSet(h, 'f', 'v');
    expectError(await c().listFetch(C(), h), CacheListFetch.Error, FAILED_PRECONDITION, 'listFetch on a RESP hash');
  });
});
