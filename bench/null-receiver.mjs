// Null receivers, the ceiling for Node: they only count what arrives.
//   node null-receiver.mjs udp <recvBufferBytes>   node:dgram socket on 127.0.0.1:0
//   node null-receiver.mjs tcp                     node:net server on 127.0.0.1:0
// Prints {"listening":PORT} on stdout once bound, its counts {"datagrams"|"connections","bytes"} on
// SIGUSR1 (and keeps going), and the final counts on SIGTERM.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { writeSync } from 'node:fs';

const mode = process.argv[2] ?? 'udp';
let count = 0;
let bytes = 0;
const counts = (extra) => writeSync(1, `${JSON.stringify({ [mode === 'udp' ? 'datagrams' : 'connections']: count, bytes, ...extra })}\n`);
const report = (extra) => {
  counts({ ...extra, final: true });
  process.exit(0);
};
process.on('SIGUSR1', () => counts({ final: false }));

if (mode === 'udp') {
  const sock = createSocket('udp4');
  sock.on('message', (msg) => {
    count++;
    bytes += msg.length;
  });
  sock.bind({ address: '127.0.0.1', port: 0 }, () => {
    const want = Number(process.argv[3] ?? 0);
    if (want > 0) {
      try {
        sock.setRecvBufferSize(want);
      } catch {
        // Keep the OS default; the granted size is reported below.
      }
    }
    writeSync(1, `${JSON.stringify({ listening: sock.address().port, recvBufferBytes: sock.getRecvBufferSize() })}\n`);
  });
  process.on('SIGTERM', () => report({}));
} else {
  const server = createServer((c) => {
    count++;
    c.on('data', (d) => {
      bytes += d.length;
    });
    c.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1', () => writeSync(1, `${JSON.stringify({ listening: server.address().port })}\n`));
  process.on('SIGTERM', () => report({}));
}
