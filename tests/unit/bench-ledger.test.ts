// The bench's exactly-once ledger: missing and duplicated ids are counted, earlier runs' ids and
// non-ids are ignored, and the id space grows past its first allocation.

import { describe, expect, test } from "bun:test";
import { Ledger, sumTallies } from "../../bench/lib/ledger.ts";

describe("bench ledger", () => {
  test("counts missing and duplicated ids of the current run only", () => {
    const l = new Ledger();
    l.start(100); // ids 101.. belong to this run
    for (const id of [101, 102, 102, 104, 104, 104, 50, NaN]) l.got(id);
    expect(l.tally(105)).toEqual({ ids: 5, missing: 2, duplicated: 2, extraDeliveries: 3 });
  });

  test("grows beyond its first allocation and a new run starts clean", () => {
    const l = new Ledger();
    l.start(0);
    const n = 200_000;
    for (let id = 1; id <= n; id++) l.got(id);
    expect(l.tally(n)).toEqual({ ids: n, missing: 0, duplicated: 0, extraDeliveries: 0 });
    l.start(n);
    l.got(n + 2);
    expect(l.tally(n + 2)).toEqual({ ids: 2, missing: 1, duplicated: 0, extraDeliveries: 0 });
    expect(sumTallies([l.tally(n + 2), l.tally(n + 2)]).missing).toBe(2);
  });
});
