// The offline flood's whole-run figure (bench/scenarios/offline-flood.ts): pure, over per-second counts.

import { describe, expect, test } from "bun:test";
import { wholeFlood } from "../../bench/scenarios/offline-flood.ts";

describe("offline-flood: every stored ack over the whole flood", () => {
  test("the acks after the measured window count, up to the last second that had one", () => {
    // 10 s paced past what the server stores, then 5 s more of storing: 150 acks in 15 s.
    const perSecond = [...Array<number>(10).fill(10), ...Array<number>(5).fill(10)];
    expect(wholeFlood(perSecond)).toEqual({ seconds: 15, storedPerSec: 10 });
  });

  test("trailing seconds without an ack do not stretch the time; quiet seconds inside do", () => {
    // A sparse array, as the driver's per-second counts are: seconds with no event are holes.
    const perSecond: (number | undefined)[] = [];
    perSecond[0] = 30;
    perSecond[3] = 30;
    perSecond.length = 8;
    expect(wholeFlood(perSecond)).toEqual({ seconds: 4, storedPerSec: 15 });
  });

  test("no ack at all is zero seconds and zero a second, not a division by zero", () => {
    expect(wholeFlood([])).toEqual({ seconds: 0, storedPerSec: 0 });
    expect(wholeFlood([0, 0, 0])).toEqual({ seconds: 0, storedPerSec: 0 });
  });
});
