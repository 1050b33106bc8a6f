import { describe, expect, test } from "bun:test";
import { cutReason, CutWatch } from "../../src/cluster/cut.ts";

describe("a node cut off from the cluster", () => {
  test("refuses sends for any not-ready reason but draining", () => {
    expect(cutReason({ ready: true })).toBeNull();
    expect(cutReason({ ready: false, reason: "draining" })).toBeNull();
    expect(cutReason({ ready: false, reason: "NATS link down" })).toContain("NATS link down");
    expect(cutReason({ ready: false, reason: "own heartbeat not stored recently" })).toContain("heartbeat");
  });
  test("sheds its clients once the cut has lasted the down-after time, and stops when it heals", () => {
    const w = new CutWatch(3500);
    expect(w.tick(true, 1000)).toBe(false);
    expect(w.tick(true, 4499)).toBe(false);
    expect(w.tick(true, 4500)).toBe(true);
    expect(w.tick(false, 5000)).toBe(false);
    expect(w.tick(true, 6000)).toBe(false); // a new cut starts its own clock
    expect(w.tick(true, 9500)).toBe(true);
  });
});
