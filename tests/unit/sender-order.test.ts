// The chaos clients' per-sender order check (chaos/lib/sender-order.ts): a first delivery below
// one its recipient already got from that sender is a reorder; pairs are independent.

import { describe, expect, test } from "bun:test";
import { idNumber, SenderOrder } from "../../chaos/lib/sender-order.ts";

describe("SenderOrder", () => {
  test("rising ids from one sender are in order, with gaps", () => {
    const o = new SenderOrder();
    for (const n of [1, 2, 5, 9, 40]) expect(o.see("r", "s", `s-${n}`)).toBe(false);
    expect(o.count).toBe(0);
  });

  test("an id below the highest delivered is a reorder, with its example", () => {
    const o = new SenderOrder();
    o.see("r", "s", "s-7");
    expect(o.see("r", "s", "s-3")).toBe(true);
    expect(o.count).toBe(1);
    expect(o.examples).toEqual(["r: s-3 after s-7"]);
    // The highest stays 7: 5 is still behind it.
    expect(o.see("r", "s", "s-5")).toBe(true);
    expect(o.see("r", "s", "s-8")).toBe(false);
  });

  test("pairs are independent: another recipient or another sender starts afresh", () => {
    const o = new SenderOrder();
    o.see("r1", "s", "s-10");
    expect(o.see("r2", "s", "s-2")).toBe(false);
    expect(o.see("r1", "t", "t-1")).toBe(false);
    expect(o.count).toBe(0);
  });

  test("examples are bounded; the count is not", () => {
    const o = new SenderOrder(2);
    o.see("r", "s", "s-100");
    for (let n = 1; n <= 5; n++) o.see("r", "s", `s-${n}`);
    expect(o.count).toBe(5);
    expect(o.examples.length).toBe(2);
  });

  test("an id number is what follows the last dash; a foreign id is never a reorder", () => {
    expect(idNumber("gml48-7055")).toBe(7055);
    expect(idNumber("a-b-12")).toBe(12);
    const o = new SenderOrder();
    o.see("r", "s", "s-4");
    expect(o.see("r", "s", "foreign")).toBe(false);
    // ... and leaves the pair's highest as it was.
    expect(o.see("r", "s", "s-2")).toBe(true);
  });
});
