import { expect, test } from "bun:test";
import { forcedGcDue, restartDelay } from "../../src/supervisor.ts";

test("restart backoff: immediate for a few crashes, then doubling, capped", () => {
  expect([1, 2, 3].map(restartDelay)).toEqual([0, 0, 0]);
  expect([4, 5, 6].map(restartDelay)).toEqual([50, 100, 200]);
  expect(restartDelay(50)).toBe(5000);
});

test("forced collections: none well under spill, every 2 s from 80% of spill, every sample above refuse", () => {
  const w = { spillBytes: 1000, refuseBytes: 2000 };
  expect([0, 1999, 2001, 60_000].map((ms) => forcedGcDue(799, w, ms))).toEqual([false, false, false, false]);
  expect([0, 1999, 2001].map((ms) => forcedGcDue(800, w, ms))).toEqual([false, false, true]);
  expect([0, 1999, 2001].map((ms) => forcedGcDue(1500, w, ms))).toEqual([false, false, true]);
  expect([0, 250].map((ms) => forcedGcDue(2000, w, ms))).toEqual([true, true]);
});
