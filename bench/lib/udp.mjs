// UDP measurement: one load against one receiver, the warm-up before it, and the figures derived from it.
import { readFileSync } from 'node:fs';
import { cpuSeconds, now, rcvbufDelta, runSender, sleep, stopTracked, udpSnmp, udpSockets, waitFor } from '../harness.mjs';
import { LPP, log, sender } from './options.mjs';
import { MIX_PER_PACKET } from './payloads.mjs';
import { startEtsy, startNull, startOurs } from './servers.mjs';

/**
 * User and system CPU seconds of the receiver's own process, children not included (/proc/<pid>/stat
 * utime and stime, in the Linux USER_HZ of 100 ticks/s): the system share tells the kernel's receive
 * path (recvmsg, socket locks) apart from what runs in user space.
 */
function userSystemSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: NaN, system: NaN };
  }
}

/**
 * Sends a load to a receiver and waits until its socket's receive queue is empty (all that the kernel
 * accepted has been read). `seconds` = the sender's own run time + the drain after it exited.
 */
export async function udpLoad(target, { payload, lpp, packets, rate = 0, maxSeconds = 120, gso = true }) {
  const s0 = udpSnmp();
  const c0 = cpuSeconds(target.pid);
  const k0 = userSystemSeconds(target.pid);
  const d0 = udpSockets().get(target.port)?.drops ?? 0;
  let maxRx = 0;
  const mon = setInterval(() => {
    const r = udpSockets().get(target.port);
    if (r !== undefined && r.rxQueue > maxRx) maxRx = r.rxQueue;
  }, 50);
  let sent;
  try {
    sent = await runSender(sender(), { port: target.port, payload, lpp, packets, rate, maxSeconds, gso });
  } finally {
    clearInterval(mon);
  }
  const drainedAt = await waitFor(() => {
    const r = udpSockets().get(target.port);
    return r === undefined || r.rxQueue === 0 ? now() : undefined;
  }, 30_000, 5);
  const drainMs = (drainedAt ?? now()) - sent.exitAt;
  const d1 = udpSockets().get(target.port)?.drops ?? d0;
  const s1 = udpSnmp();
  return {
    sender: sent,
    seconds: sent.seconds + drainMs / 1000,
    drainMs,
    drainTimedOut: drainedAt === undefined,
    kernelRcvbufErrors: rcvbufDelta(s0, s1),
    socketDrops: d1 - d0,
    serverCpuSeconds: cpuSeconds(target.pid) - c0,
    // The primary process alone: with --workers > 1 the workers' split is not in it.
    primaryCpuSplit: ((k) => ({ user: k.user - k0.user, system: k.system - k0.system }))(userSystemSeconds(target.pid)),
    maxRxQueueBytes: maxRx,
  };
}

/**
 * Warm-up before a measured blast, so that no receiver is measured while its JIT is still cold:
 * 0.4 s at 1M lines/s of the same kind of lines under another prefix (not counted), then drain.
 */
export async function warmUp(target, load) {
  if (load.warm === undefined) return;
  await runSender(sender(), { port: target.port, payload: load.warm, lpp: load.lpp, gso: load.gso, packets: Math.round(20_000 * (LPP / load.lpp) / 10), rate: Math.round(50_000 * (LPP / load.lpp) / 10), maxSeconds: 10 });
  await waitFor(() => (udpSockets().get(target.port)?.rxQueue ?? 0) === 0 || undefined, 10_000, 5);
  await sleep(100);
}

/** Derived figures of one UDP run. */
export function rates(run, received) {
  const sentLines = run.sender.lines;
  return {
    ...run,
    ...received,
    linesPerSec: received.lines / run.seconds,
    packetsPerSec: received.packets / run.seconds,
    offeredLinesPerSec: sentLines / run.sender.seconds,
    offeredPacketsPerSec: run.sender.packets / run.sender.seconds,
    lostLines: sentLines - received.lines,
    // Sent lines neither flushed nor dropped by the kernel at the socket: loss inside the receiver.
    unaccountedLines: sentLines - received.lines - run.socketDrops * run.sender.lines / Math.max(1, run.sender.packets),
    serverCpuBusy: run.serverCpuSeconds / run.seconds,
    // The receiver took (nearly) all that was offered: the sender, not the receiver, set the pace.
    senderBound: received.lines / run.seconds >= 0.9 * (sentLines / run.sender.seconds),
    receivedFraction: received.lines / sentLines,
    linesPerCpuSecond: received.lines / run.serverCpuSeconds,
  };
}

/**
 * Our CLI under a load. `alongside(srv)`, when given, runs from start-up to the end of the load (e.g.
 * a client polling the admin listener) and returns a function that stops it.
 */
export async function oursUdp(load, tally, extra = [], alongside = undefined) {
  const srv = await startOurs(extra, tally.onSeries);
  if (!srv.ok) throw new Error(`metrics-distributor did not start (exit ${srv.code}): ${srv.message}`);
  const stopAlongside = alongside === undefined ? undefined : await alongside(srv);
  await warmUp(srv, load);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await stopAlongside?.();
  const ex = await stopTracked(srv.h);
  if (ex.code !== 0) log(`warning: metrics-distributor exited ${ex.code}${ex.killed ? ' (killed)' : ''}`);
  return rates(run, tally.result(load.lpp));
}

export async function etsyUdp(load, { prefix, timerPrefix, mixed = false }) {
  const srv = await startEtsy({ prefix, timerPrefix });
  await warmUp(srv, load);
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  await stopTracked(srv.h);
  const counters = Math.round(srv.flushes.reduce((a, f) => a + f.counters, 0));
  const timerCount = Math.round(srv.flushes.reduce((a, f) => a + f.timerCount, 0));
  let received;
  if (mixed) {
    const packets = counters / MIX_PER_PACKET.c;
    received = { packets, lines: packets * LPP, checks: { fromMs: timerCount / (MIX_PER_PACKET.ms * 2) }, consistent: Math.abs(timerCount / (MIX_PER_PACKET.ms * 2) - packets) <= 1 };
  } else {
    received = { lines: counters, packets: counters / load.lpp };
  }
  return rates(run, { ...received, flushes: srv.flushes.length, etsyBadLines: srv.flushes.reduce((a, f) => a + f.bad, 0) });
}

export async function nullUdp(load) {
  const srv = await startNull('udp');
  await warmUp(srv, load);
  const w = load.warm === undefined ? { datagrams: 0, bytes: 0 } : await srv.snapshot();
  const run = await udpLoad({ pid: srv.pid, port: srv.port }, load);
  const r = await srv.result();
  const datagrams = r.datagrams - w.datagrams;
  return rates(run, { packets: datagrams, lines: datagrams * load.lpp, bytes: r.bytes - w.bytes });
}

/** Strips bulky fields for the JSON file. */
export const slim = (r) => (r === undefined ? undefined : { ...r, sender: r.sender === undefined ? undefined : { ...r.sender, exitAt: undefined } });
