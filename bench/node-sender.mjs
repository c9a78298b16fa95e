// Fallback UDP load generator, used only when no C compiler is found. Same arguments and output as
// sender.c, but far slower: on loopback it may itself be the bottleneck, and run.mjs says so.
//   node node-sender.mjs HOST PORT PAYLOAD LINES_PER_PACKET TOTAL_PACKETS RATE_PPS [MAX_SECONDS]
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

const [host, portArg, payload, lppArg, totalArg, rateArg, maxArg] = process.argv.slice(2);
const lpp = Number(lppArg);
const total = Number(totalArg);
const rate = Number(rateArg);
const maxSeconds = Number(maxArg ?? 600);

let lines;
if (payload.startsWith('counters:')) {
  const [, n, prefix = 'bench.c'] = payload.split(':');
  const width = String(Number(n) - 1).length;
  lines = Array.from({ length: Number(n) }, (_, i) => `${prefix}.${String(i).padStart(width, '0')}:1|c`);
} else {
  lines = readFileSync(payload, 'utf8').split('\n').filter((l) => l.length > 0);
}
const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
const npk = lines.length / gcd(lines.length, lpp);
const packets = [];
for (let j = 0, li = 0; j < npk; j++, li = (li + lpp) % lines.length) {
  const group = [];
  for (let k = 0; k < lpp; k++) group.push(lines[(li + k) % lines.length]);
  packets.push(Buffer.from(group.join('\n')));
}

const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
await new Promise((resolve) => sock.connect(Number(portArg), host, resolve));
let sent = 0;
let bytes = 0;
let errors = 0;
let next = 0;
const start = performance.now();
const deadline = start + maxSeconds * 1000;
const BATCH = 256;
const sendOne = (p) =>
  new Promise((resolve) =>
    sock.send(p, (err) => {
      if (err) errors++;
      else {
        sent++;
        bytes += p.length;
      }
      resolve();
    }),
  );
let timedOut = false;
while (sent < total) {
  const now = performance.now();
  if (now > deadline) {
    timedOut = true;
    break;
  }
  const due = rate > 0 ? Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1) : total;
  const n = Math.min(BATCH, due - sent);
  if (n <= 0) {
    await new Promise((r) => setTimeout(r, 1));
    continue;
  }
  const batch = [];
  for (let i = 0; i < n; i++) {
    batch.push(sendOne(packets[next]));
    next = (next + 1) % npk;
  }
  await Promise.all(batch);
  if (errors > 100000) break;
}
const seconds = (performance.now() - start) / 1000;
sock.close();
console.log(JSON.stringify({ packets: sent, lines: sent * lpp, bytes, seconds, calls: sent, refused: 0, nobufs: 0, otherErrors: errors, timedOut, distinctPackets: npk, gsoSegments: 1, packetBytes: 0, paddingBytesPerPacket: 0 }));
