import { expect, test } from "bun:test";
import { forcedGcDue, restartDelay } from "../../src/supervisor.ts";
import { Pressure } from "../../src/observe/signals.ts";

test("restart backoff: immediate for a few crashes, then doubling, capped", () => {
  expect([1, 2, 3].map(restartDelay)).toEqual([0, 0, 0]);
  expect([4, 5, 6].map(restartDelay)).toEqual([50, 100, 200]);
  expect(restartDelay(50)).toBe(5000);
});

test("forced collections: none without pressure, every 2 s above spill, every sample above refuse", () => {
  expect([0, 1999, 2001, 60_000].map((ms) => forcedGcDue(Pressure.NONE, ms))).toEqual([false, false, false, false]);
  expect([0, 1999, 2001].map((ms) => forcedGcDue(Pressure.SPILL, ms))).toEqual([false, false, true]);
  expect([0, 250].map((ms) => forcedGcDue(Pressure.REFUSE, ms))).toEqual([true, true]);
});
