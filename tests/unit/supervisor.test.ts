import { expect, test } from "bun:test";
import { GcPacer, restartDelay } from "../../src/supervisor.ts";

test("restart backoff: immediate for a few crashes, then doubling, capped", () => {
  expect([1, 2, 3].map(restartDelay)).toEqual([0, 0, 0]);
  expect([4, 5, 6].map(restartDelay)).toEqual([50, 100, 200]);
  expect(restartDelay(50)).toBe(5000);
});

test("forced collections: none under 80% of spill, every 2 s from there, every sample above refuse", () => {
  const w = { spillBytes: 1000, refuseBytes: 2000 };
  const under = new GcPacer(w);
  expect([0, 2500, 60_000].map((t) => under.due(799, t))).toEqual([false, false, false]);
  const spilling = new GcPacer(w);
  expect([0, 1000, 2001, 4002].map((t) => spilling.due(1500, t))).toEqual([true, false, true, true]);
  const refusing = new GcPacer(w);
  expect([0, 250, 500].map((t) => refusing.due(2000, t))).toEqual([true, true, true]);
});

test("below the spill mark, collections that do not bring RSS down come ever less often, up to 32 s", () => {
  const p = new GcPacer({ spillBytes: 1000, refuseBytes: 2000 });
  // RSS stays at 90% of spill: live memory, not garbage. Fired at 0; the gap doubles on each look after.
  const fired: number[] = [];
  for (let t = 0; t <= 120_000; t += 250) if (p.due(900, t)) fired.push(t);
  expect(fired.slice(0, 5)).toEqual([0, 4250, 12500, 28750, 61000]);
  expect(fired[5]! - fired[4]!).toBe(32_250); // capped
  // A collection that brings RSS down by 5% of the spill mark pays: the gap stays at 2 s.
  const q = new GcPacer({ spillBytes: 1000, refuseBytes: 2000 });
  expect([q.due(900, 0), q.due(850, 250), q.due(900, 2000), q.due(900, 2500)]).toEqual([true, false, false, true]);
  expect([q.due(880, 2750), q.due(900, 4500), q.due(900, 6750)]).toEqual([false, false, true]); // 20: did not pay
  // Above the spill mark the band's gap does not apply.
  expect([p.due(1100, 121_000), p.due(1100, 123_500)]).toEqual([true, true]);
});
