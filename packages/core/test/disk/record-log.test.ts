import t from 'tap';
import { mkdtemp, readFile, readdir, truncate, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordLog, encodeRecord, segmentPath, type EncodedRecord } from '../../src/disk/record-log.js';

const tmp = (): Promise<string> => mkdtemp(join(tmpdir(), 'md-log-'));
const rec = (n: number, bytes = 100): Promise<EncodedRecord> => encodeRecord(1, [Buffer.alloc(bytes, n % 256)]);

t.test('records come back in order, across reopenings, each run writing a new segment', async (t) => {
  const dir = await tmp();
  const a = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  for (let i = 0; i < 5; i++) await a.log.append(await rec(i));
  await a.log.close();
  const b = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  t.same(b.records.map((r) => r.data[0]), [0, 1, 2, 3, 4]);
  t.same(b.corrupt, []);
  await b.log.append(await rec(5));
  await b.log.close();
  t.equal((await readdir(dir)).length, 2, 'the second run did not append to the first segment');
  const c = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  t.same(c.records.map((r) => r.data[0]), [0, 1, 2, 3, 4, 5]);
});

t.test('a torn tail is skipped and reported as such; the records before it are kept', async (t) => {
  const dir = await tmp();
  const a = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  const refs = [];
  for (let i = 0; i < 3; i++) refs.push(await a.log.append(await rec(i)));
  await a.log.close();
  const file = segmentPath(dir, refs[2]!.seg);
  await truncate(file, refs[2]!.offset + 40); // the last record cut in its middle, as a SIGKILL mid-write leaves it
  const b = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  t.same(b.records.map((r) => r.data[0]), [0, 1]);
  t.equal(b.corrupt.length, 1);
  t.match(b.corrupt[0], { file, offset: refs[2]!.offset, bytes: 40, tail: true });
});

t.test('a corrupt record in the middle is skipped (bad CRC), the next ones are found again', async (t) => {
  const dir = await tmp();
  const a = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  const refs = [];
  for (let i = 0; i < 4; i++) refs.push(await a.log.append(await rec(i)));
  await a.log.close();
  const file = segmentPath(dir, refs[1]!.seg);
  const buf = await readFile(file);
  buf[refs[1]!.offset + 50] = buf[refs[1]!.offset + 50]! ^ 0xff; // one flipped bit-pattern in record 1's data
  buf.writeUInt32LE(0xffffff, refs[2]!.offset + 4); // record 2's length field broken too
  await writeFile(file, buf);
  const b = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  t.same(b.records.map((r) => r.data[0]), [0, 3]);
  t.equal(b.corrupt.length, 1, 'one bad region');
  t.match(b.corrupt[0], { file, offset: refs[1]!.offset, tail: false });
  t.equal(await b.log.read(refs[1]!), undefined, 'reading the corrupt record back says so');
  t.equal((await b.log.read(refs[3]!))?.data[0], 3);
});

t.test('garbage that is not a segment at all does not stop an open', async (t) => {
  const dir = await tmp();
  await writeFile(segmentPath(dir, 7), Buffer.from('not a log'));
  await appendFile(segmentPath(dir, 7), Buffer.concat((await rec(1)).parts));
  const b = await RecordLog.open(dir, { segmentBytes: 1 << 20 });
  t.same(b.records.map((r) => r.data[0]), [1], 'the record after the garbage is still found');
  t.ok(b.corrupt.length >= 1);
});

t.test('segments rotate past segmentBytes and are removed whole, oldest first, never the active one', async (t) => {
  const dir = await tmp();
  const { log } = await RecordLog.open(dir, { segmentBytes: 200 });
  const refs = [];
  for (let i = 0; i < 6; i++) refs.push(await log.append(await rec(i)));
  const segs = log.segments();
  t.ok(segs.length >= 3, `rotated into ${segs.length} segments`);
  t.equal(log.bytes, segs.reduce((n, s) => n + log.segmentBytes(s), 0));
  await log.dropThrough(segs[0]!);
  t.same(log.segments(), segs.slice(1));
  await log.dropThrough(Number.MAX_SAFE_INTEGER);
  t.same(log.segments(), [log.activeSeq], 'the active segment stays');
  await log.close();
  const again = await RecordLog.open(dir, { segmentBytes: 200 });
  const inLast = refs.flatMap((r, i) => (r.seg === segs.at(-1) ? [i] : []));
  t.ok(inLast.length > 0 && inLast.length < refs.length);
  t.same(again.records.map((r) => r.data[0]), inLast, 'only the records of the segment left');
});
