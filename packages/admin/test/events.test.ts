import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import { EventStreams } from '../src/events.js';

/** A response whose write() reports a full buffer while `full` is set. */
class FakeResponse extends EventEmitter {
  chunks: string[] = [];
  full = false;
  ended = false;
  status = 0;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(s: string): boolean {
    this.chunks.push(s);
    return !this.full;
  }
  end(): void {
    this.ended = true;
    this.emit('close');
  }
}

t.test('a slow client skips ticks instead of buffering them, and resumes on drain', async (t) => {
  let n = 0;
  const streams = new EventStreams(2, () => JSON.stringify({ n: ++n }));
  const req = new EventEmitter() as IncomingMessage;
  const res = new FakeResponse();
  streams.open(req, res as unknown as ServerResponse, '{"n":0}');
  t.equal(res.status, 200);
  t.same(res.chunks, ['retry: 2000\n', 'event: status\ndata: {"n":0}\n\n']);
  res.full = true;
  streams.tick();
  t.equal(res.chunks.length, 3, 'the write that filled the buffer went out');
  streams.tick();
  streams.tick();
  t.equal(res.chunks.length, 3, 'then ticks are skipped');
  t.equal(streams.skipped, 2);
  res.full = false;
  res.emit('drain');
  streams.tick();
  t.equal(res.chunks.length, 4);
  t.equal(res.chunks[3], `event: status\ndata: {"n":${n}}\n\n`, 'the newest document, not a backlog');
});

t.test('streams are forgotten on close, bounded, and ended by closeAll', async (t) => {
  let built = 0;
  const streams = new EventStreams(2, () => {
    built++;
    return '{}';
  });
  streams.tick();
  t.equal(built, 0, 'nothing is serialised without a stream');
  const a = new FakeResponse();
  const b = new FakeResponse();
  const reqA = new EventEmitter() as IncomingMessage;
  streams.open(reqA, a as unknown as ServerResponse, '{}');
  streams.open(new EventEmitter() as IncomingMessage, b as unknown as ServerResponse, '{}');
  t.equal(streams.canOpen(), false);
  streams.tick();
  t.equal(built, 1, 'one document per tick for every stream');
  reqA.emit('close');
  t.equal(streams.size, 1);
  t.equal(streams.canOpen(), true);
  streams.closeAll();
  t.equal(b.ended, true);
  t.equal(streams.size, 0);
});
