// Which of two logins of one user is the newer when their attaches arrive out of order (router/login-order.ts).

import { expect, test } from "bun:test";
import { CROSS_NODE_SLACK_MS, measureDrift, openStamp, staleAttach, stampDrift } from "../../src/router/login-order.ts";
import type { AttachMsg } from "../../src/router/wire.ts";

/** How far a started thread's stamps may stray from the main thread's (the drift reads' delay). */
const ALIGN_SLACK_MS = 0.5;

const attach = (opened?: number): AttachMsg => ({
  t: "attach",
  user: "u",
  shard: 0,
  conn: 1,
  v0: false,
  resume: 0,
  ...(opened === undefined ? {} : { opened }),
});

test("an attach from a socket opened before the link's is stale (single node)", () => {
  expect(staleAttach(200, attach(100), 0)).toBe(true);
});

test("a later-opened socket, a tie, or a missing stamp: arrival order decides", () => {
  expect(staleAttach(100, attach(200), 0)).toBe(false);
  expect(staleAttach(100, attach(100), 0)).toBe(false);
  expect(staleAttach(undefined, attach(100), 0)).toBe(false);
  expect(staleAttach(200, attach(), 0)).toBe(false);
});

test("across nodes an attach is stale only when its socket opened more than the slack earlier", () => {
  const s = CROSS_NODE_SLACK_MS;
  // The split-brain case: a login's attach 800 ms late, its socket opened ~500 ms before the link's.
  expect(staleAttach(10_500, attach(10_000), s)).toBe(true);
  expect(staleAttach(10_000 + s, attach(10_000), s)).toBe(false); // within the slack: arrival order
  expect(staleAttach(10_000, attach(10_050), s)).toBe(false);
  expect(staleAttach(10_500, attach(), s)).toBe(false);
});

test("a thread's drift from the wall clock is read at a tick of the wall clock (pure, stepped clocks)", () => {
  // A stamp clock 7.25 ms ahead of a wall clock that reads whole ms; each read advances time 0.01 ms.
  let t = 1_000_000.5;
  const wall = () => Math.floor(t += 0.01);
  const stamp = () => (t += 0.01) + 7.25;
  const d = measureDrift(wall, stamp, 3);
  expect(d).toBeGreaterThanOrEqual(7.25);
  expect(d).toBeLessThan(7.25 + 0.05); // off by the reads' own time only
  // The offset one thread's stamps carry against another's is the difference of their drifts.
  let u = 2_000_000.2;
  const behind = measureDrift(() => Math.floor(u += 0.01), () => (u += 0.01) - 3, 3);
  expect(d - behind).toBeCloseTo(10.25, 1);
});

test("stamps order across threads, also from a thread started later (a restarted shard)", async () => {
  // A worker's performance.now() counts from its own start and its timeOrigin is the wall clock at
  // that start: without alignment a shard restarted later (after a clock step) stamps against the
  // others. A started thread aligns to the main thread's drift, as a shard does at init.
  const before = openStamp();
  await Bun.sleep(300);
  const w = new Worker(new URL("../fixtures/stamp-worker.ts", import.meta.url).href);
  const ask = (m: unknown) =>
    new Promise<number>((resolve) => {
      w.onmessage = (e) => resolve(e.data as number);
      w.postMessage(m);
    });
  await ask({ t: "align", mainDrift: stampDrift() });
  const samples: [number, number, number][] = [];
  for (let i = 0; i < 20; i++) {
    const lo = openStamp();
    const inWorker = await ask({ t: "stamp" });
    samples.push([lo, inWorker, openStamp()]);
  }
  w.terminate();
  expect(samples[0]![1]).toBeGreaterThan(before + 250);
  // Each worker stamp lies between the main thread's stamps around it, within the alignment's
  // error: the reads' own delay (microseconds; the bound is loose for a loaded machine).
  for (const [lo, inWorker, hi] of samples) {
    expect(inWorker).toBeGreaterThan(lo - ALIGN_SLACK_MS);
    expect(inWorker).toBeLessThan(hi + ALIGN_SLACK_MS);
  }
});
