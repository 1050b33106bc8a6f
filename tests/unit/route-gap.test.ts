// The owner's side of per-sender order across lost routes and refusals (pure): route-gap.ts and
// route-order.ts with recording callbacks.

import { describe, expect, test } from "bun:test";
import { ROUTE_GAP_MAX_MS, ROUTE_GAP_RENOTICE_MS, RouteGaps } from "../../src/cluster/route-gap.ts";
import { OWNER_FENCE_MS as FENCE_MS, RouteOrder } from "../../src/cluster/route-order.ts";
import type { RouteMsg } from "../../src/router/wire.ts";

const route = (id: string, to = "r", o = 7, c = 1): RouteMsg => ({
  t: "route",
  to,
  from: "s",
  id,
  body: new Uint8Array(0),
  ts: 0,
  t0: 0,
  o,
  c,
});

describe("route gaps", () => {
  test("refused from the gap until the answer; the notice repeats; the wait is bounded", () => {
    const g = new RouteGaps();
    expect(g.check(7, 0)).toBe("pass");
    g.opened(7, 100);
    expect(g.check(7, 150)).toBe("refuse");
    expect(g.check(8, 150)).toBe("pass"); // another shard's routes are not held
    expect(g.check(7, 100 + ROUTE_GAP_RENOTICE_MS)).toBe("renotice");
    expect(g.check(7, 110 + ROUTE_GAP_RENOTICE_MS)).toBe("refuse");
    g.resumed(7);
    expect(g.check(7, 2000)).toBe("pass");
    expect(g.size).toBe(0);
    g.opened(7, 0);
    expect(g.check(7, ROUTE_GAP_MAX_MS)).toBe("pass");
    expect(g.size).toBe(0);
  });
});

describe("route order at the owner", () => {
  function recorder() {
    const refused: string[] = [], notices: number[] = [];
    const ro = new RouteOrder({ refuse: (m, code) => refused.push(`${m.id}:${code}`), notice: (s) => notices.push(s) });
    return { ro, refused, notices };
  }

  test("after a gap, every route from that shard is refused and fences its connection's recipient", () => {
    const { ro, refused, notices } = recorder();
    ro.gapFrom(7, 0);
    expect(notices).toEqual([7]);
    expect(ro.refuses(route("m3"), 10)).toBe(true);
    expect(ro.refuses(route("z", "r", 8), 10)).toBe(false);
    ro.resumed(7);
    // The owner fence still holds m3's recipient on that connection until m3 comes back.
    expect(ro.refuses(route("m4"), 20)).toBe(true);
    expect(ro.refuses(route("q", "other"), 20)).toBe(false);
    expect(ro.refuses(route("m2", "r", 7, 2), 20)).toBe(false); // a new connection (the SDK logged in again)
    expect(ro.refuses(route("m3"), 30)).toBe(false);
    expect(ro.refuses(route("m4"), 30)).toBe(false);
    expect(refused).toEqual(["m3:SERVER_BUSY", "m4:SERVER_BUSY"]);
  });

  test("an owner refusal fences for at most OWNER_FENCE_MS; lapsed fences are forgotten", () => {
    const { ro, refused } = recorder();
    ro.refuse(route("a"), "SERVER_BUSY", "moving", 0);
    expect(ro.refuses(route("b"), FENCE_MS - 1)).toBe(true);
    expect(ro.refuses(route("b"), FENCE_MS)).toBe(false);
    for (let c = 0; c < 100; c++) ro.refuse(route("a", "r", 7, c), "SERVER_BUSY", "moving", 2 * FENCE_MS);
    ro.refuse(route("a", "r", 7, 500), "SERVER_BUSY", "moving", 4 * FENCE_MS); // sweeps the 100 lapsed
    expect(ro.refuses(route("b", "r", 7, 3), 4 * FENCE_MS)).toBe(false);
    expect(refused.length).toBe(103);
  });

  test("a fence that held when a cut began holds OWNER_FENCE_MS past the regain (its routes were parked meanwhile)", () => {
    const { ro, refused } = recorder();
    // m1 refused at 0 (parked too long during the cut that began at -500); m2 was parked behind it.
    ro.refuse(route("m1"), "SERVER_BUSY", "moving", 0);
    // A fence that had lapsed before the cut began stays lapsed.
    ro.refuse(route("x", "other"), "SERVER_BUSY", "moving", -5 * FENCE_MS);
    ro.regained(-500, 3 * FENCE_MS);
    expect(ro.refuses(route("m2"), 3 * FENCE_MS + 100)).toBe(true); // without the renewal: lapsed, m2 passes m1
    expect(ro.refuses(route("y", "other"), 3 * FENCE_MS + 100)).toBe(false);
    expect(ro.refuses(route("m1"), 3 * FENCE_MS + 200)).toBe(false);
    expect(ro.refuses(route("m2"), 3 * FENCE_MS + 300)).toBe(false);
    expect(ro.refuses(route("m3"), 4 * FENCE_MS + 200)).toBe(false);
    expect(refused).toEqual(["m1:SERVER_BUSY", "x:SERVER_BUSY", "m2:SERVER_BUSY"]);
  });
});
