// Which of two logins of one user is the newer, when their attaches reach the owner out of order
// (issue 10: acked messages lost by a single node under heavy load). A shard starved of CPU reads
// a socket's login late: its client may meanwhile have been killed or given up on that socket, and
// logged in again on the other shard. The late login's attach then reaches the owner after the new
// one's; taken as the newest login (arrival order), it closed the real newest connection with
// REPLACED, whose SDK stops for good, and its own close left the box with no link: every later
// message for the user was stored and never delivered.
//
// A session is stamped when its socket opens (openStamp), on a clock every shard thread of the
// process reads alike. A client opens its next socket only after its previous one was opened (and
// given up), so the open order is the login order even when the logins are read in another order.
// Stamps of different processes (cluster nodes) compare through their wall clocks, which must
// agree to within CROSS_NODE_SLACK_MS (NTP; docs/CLUSTER.md): a login's attach held back in a NATS
// client's reconnect buffer reached the owner 800 ms late, after its client had been closed and had
// logged in on another node, and closed that newest login with REPLACED; the SDK stopped for good
// (split-brain chaos, 107 sends failed). Across nodes an attach is stale only when its socket
// opened CROSS_NODE_SLACK_MS before the link's: closer logins keep the arrival order.

import type { AttachMsg } from "./wire.ts";

/** Wall-clock ticks sampled to measure a thread's stamp clock against the wall clock (the least wins). */
const DRIFT_SAMPLES = 3;

/**
 * How far this thread's stamp clock is ahead of the process's: set once at a shard's start
 * (alignStamps) from the main thread's reading, 0 in the main thread.
 */
let stampOffset = 0;

/**
 * Now, in epoch ms with sub-ms digits, alike in every thread: a worker's `performance.now()` (and
 * Bun.nanoseconds, process.hrtime) counts from that worker's own start, so a shard restarted later
 * would stamp its sockets as the oldest (god-mode with --stalls: new logins on a restarted shard
 * were closed as REPLACED). Its timeOrigin anchors it to the wall clock at the thread's start, but
 * a step of the system clock since the main thread's start (or a thread's origin read a little
 * apart from its monotonic zero) shifts one thread against another for good: alignStamps takes
 * that shift out, so every shard stamps on the main thread's clock.
 */
export function openStamp(): number {
  return performance.timeOrigin + performance.now() - stampOffset;
}

/** This thread's stamp clock minus the wall clock, in ms (before alignment). */
export function stampDrift(): number {
  return measureDrift(Date.now, () => performance.timeOrigin + performance.now(), DRIFT_SAMPLES);
}

/**
 * Pure but for the clocks it is given. The wall clock reads whole ms, so it is read until it turns
 * over: at that instant it stands exactly on its new value, and the stamp read right after is off
 * by the read's own delay only (always late: the least of a few samples is kept).
 */
export function measureDrift(wall: () => number, stamp: () => number, samples: number): number {
  let best = Infinity;
  for (let i = 0; i < samples; i++) {
    const from = wall();
    let tick = wall();
    while (tick === from) tick = wall();
    const d = stamp() - tick;
    if (d < best) best = d;
  }
  return best;
}

/**
 * In a shard at its start: stamp on the main thread's clock from now on. `mainDrift` is the main
 * thread's stampDrift read as it started this shard; a clock step between the two readings (a few
 * ms) is the only error left.
 */
export function alignStamps(mainDrift: number): void {
  stampOffset = stampDrift() - mainDrift;
}

/** Across nodes, how much earlier an attach's socket must have opened to count as stale. */
export const CROSS_NODE_SLACK_MS = 100;

/**
 * Pure. True when the attach `m` comes from a connection opened before the one holding the box's
 * link (`linkOpened`): a stale login (or re-attach) that must not displace the newer one. False
 * when either stamp is missing or they tie. `slackMs`: 0 for two sockets of one process, else
 * CROSS_NODE_SLACK_MS (stamps of two clocks).
 */
export function staleAttach(linkOpened: number | undefined, m: AttachMsg, slackMs: number): boolean {
  if (linkOpened === undefined || m.opened === undefined) return false;
  return m.opened < linkOpened - slackMs;
}
