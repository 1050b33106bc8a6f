// Which of two logins of one user is the newer when their attaches arrive out of order (router/login-order.ts).

import { expect, test } from "bun:test";
import { CROSS_NODE_SLACK_MS, openStamp, staleAttach } from "../../src/router/login-order.ts";
import type { AttachMsg } from "../../src/router/wire.ts";

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

test("stamps order across threads, also from a thread started later (a restarted shard)", async () => {
  // A worker's performance.now() counts from its own start: without the timeOrigin anchor a shard
  // restarted later would stamp its new sockets as older than every socket of the others.
  const before = openStamp();
  await Bun.sleep(300);
  const src = `self.onmessage = () => postMessage(performance.timeOrigin + performance.now());`; // openStamp's body
  const w = new Worker(URL.createObjectURL(new Blob([src], { type: "application/javascript" })));
  const inWorker = await new Promise<number>((resolve) => {
    w.onmessage = (e) => resolve(e.data as number);
    w.postMessage(0);
  });
  const after = openStamp();
  w.terminate();
  expect(inWorker).toBeGreaterThan(before + 250);
  expect(inWorker).toBeLessThanOrEqual(after);
  expect(openStamp.toString()).toContain("performance.timeOrigin + performance.now()"); // the worker ran this body
});
