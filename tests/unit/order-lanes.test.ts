// The SDK's per-recipient lanes (client/order-lanes.ts) and the session's refusal fence
// (gateway/refusal-fence.ts), without a server: what goes on the wire, in which order, when.

import { describe, expect, test } from "bun:test";
import { laneBackoffMs, type LaneSend, OrderLanes } from "../../src/client/order-lanes.ts";
import { FENCE_MS, RefusalFence } from "../../src/gateway/refusal-fence.ts";
import { until } from "../helpers/server.ts";

interface Send extends LaneSend {
  n: number;
}

/** A client's unacked sends and its wire, as the lanes see them. */
function rig() {
  const pending = new Map<string, Send>();
  const wire: string[] = [];
  const transmit = (s: Send) => {
    s.inFlight = true;
    s.sentAt = Date.now();
    wire.push(s.id);
  };
  const lanes = new OrderLanes<Send>({ pending: () => pending.values(), transmit, canSend: () => true }, 3000);
  const send = (id: string, to: string) => {
    const s: Send = { id, to, n: pending.size, inFlight: false, sentAt: 0 };
    pending.set(id, s);
    if (!lanes.holds(to)) transmit(s);
    return s;
  };
  const ack = (id: string) => {
    const s = pending.get(id)!;
    pending.delete(id);
    lanes.settled(s);
  };
  return { pending, wire, lanes, send, ack };
}

describe("order lanes (SDK)", () => {
  test("a refusal holds newer sends to that recipient; the oldest is retried alone, then the rest in order", async () => {
    const r = rig();
    const [m1, m2] = [r.send("m1", "a"), r.send("m2", "a")];
    r.send("x1", "b");
    r.lanes.refused(m1); // m2 was on the wire already: its answer is awaited before the probe
    r.send("m3", "a"); // held
    r.send("x2", "b"); // another recipient: not held
    expect(r.wire).toEqual(["m1", "m2", "x1", "x2"]);
    r.lanes.refused(m2);
    await until(() => r.wire.length > 4, "the probe");
    await Bun.sleep(20);
    expect(r.wire.slice(4)).toEqual(["m1"]); // the probe, alone
    r.send("m4", "a");
    expect(r.wire.length).toBe(5);
    r.ack("m1");
    expect(r.wire.slice(5)).toEqual(["m2", "m3", "m4"]);
    expect(r.lanes.closed).toBe(0);
  });

  test("the probe waits for a send that was on the wire before the refusal, and backs off longer when refused again", async () => {
    const r = rig();
    const [m1] = [r.send("m1", "a"), r.send("m2", "a")];
    r.lanes.refused(m1);
    await Bun.sleep(laneBackoffMs(1) + 50);
    expect(r.wire).toEqual(["m1", "m2"]); // m2 unanswered: no probe yet
    r.ack("m2"); // accepted before m1 was retried (the server's fence prevents this; the lane cannot)
    expect(r.wire).toEqual(["m1", "m2", "m1"]);
    const again = performance.now();
    r.lanes.refused(m1); // the probe refused again: it backs off 200 ms now
    await until(() => r.wire.length > 3, "the second probe");
    expect(performance.now() - again).toBeGreaterThanOrEqual(laneBackoffMs(2) - 5);
    expect(r.wire).toEqual(["m1", "m2", "m1", "m1"]);
    r.lanes.reset();
  });
});

describe("refusal fence (session)", () => {
  test("fences a recipient after a refusal until the refused id comes back, or FENCE_MS", () => {
    const f = new RefusalFence();
    f.refused("a", "m1", "RATE_LIMITED", 0);
    f.refused("a", "m2", "SERVER_BUSY", 1); // the older refusal keeps the fence
    expect(f.check("a", "m2", 2)).toBe("RATE_LIMITED");
    expect(f.check("b", "x1", 2)).toBeNull();
    expect(f.check("a", "m1", 3)).toBeNull(); // the retry lifts it
    expect(f.check("a", "m2", 4)).toBeNull();
    f.refused("a", "m5", "SERVER_BUSY", 10);
    expect(f.check("a", "m6", 10 + FENCE_MS - 1)).toBe("SERVER_BUSY");
    expect(f.check("a", "m6", 10 + FENCE_MS)).toBeNull(); // a client that gave up on m5
    expect(f.size).toBe(0);
  });

  test("the sends a fence refused come back before later sends, in their order", () => {
    // Split-brain seed 48602: routes parked at a cut ran in one burst at the regain; the refused m0
    // came back among the fenced m6..m18, and m24 passed before their retries.
    const f = new RefusalFence();
    f.refused("a", "m0", "SERVER_BUSY", 0);
    for (const id of ["m6", "m12", "m18"]) expect(f.check("a", id, 1)).toBe("SERVER_BUSY");
    expect(f.check("a", "m0", 2)).toBeNull();
    expect(f.check("a", "m24", 3)).toBe("SERVER_BUSY"); // m6..m18 are still to come back
    expect(f.check("a", "m12", 4)).toBe("SERVER_BUSY"); // m6 first
    for (const id of ["m6", "m12", "m18", "m24"]) expect(f.check("a", id, 5)).toBeNull();
    expect(f.size).toBe(0);
    // Refused again right after it passed as the oldest: it is the oldest again.
    f.refused("a", "m30", "SERVER_BUSY", 10);
    expect(f.check("a", "m36", 10)).toBe("SERVER_BUSY");
    expect(f.check("a", "m30", 11)).toBeNull();
    f.refused("a", "m30", "SERVER_BUSY", 12);
    expect(f.check("a", "m36", 13)).toBe("SERVER_BUSY");
    expect(f.check("a", "m30", 14)).toBeNull();
    expect(f.check("a", "m36", 15)).toBeNull();
  });

  test("a refusal after the fence lapsed (not yet swept) starts a new fence", () => {
    // Split-brain full size: m1069 was refused 100 ms after its recipient's fence (m1042) lapsed;
    // it joined the lapsed fence, and its own retry's copy passed unfenced ahead of m1042's retry.
    const f = new RefusalFence();
    f.refused("a", "m1", "SERVER_BUSY", 0);
    f.refused("a", "m4", "SERVER_BUSY", FENCE_MS + 100);
    expect(f.check("a", "m5", FENCE_MS + 200)).toBe("SERVER_BUSY");
    expect(f.check("a", "m4", FENCE_MS + 300)).toBeNull();
    expect(f.check("a", "m5", FENCE_MS + 400)).toBeNull();
  });

  test("a send on the wire at the refusal, re-posted by the server later, waits behind the refused ones", () => {
    // Split-brain full size: m711 was refused at a cut; m801, unanswered on the same connection, was
    // re-posted to the recipient's new owner 1.8 s later (the fence's time was up) and numbered first.
    const f = new RefusalFence();
    f.refused("a", "m711", "SERVER_BUSY", 0, -20); // received at -20, refused at 0
    expect(f.holdBack("b", "x", -10, 10)).toBeNull(); // another recipient: re-posted
    expect(f.holdBack("a", "m702", -30, 10)).toBeNull(); // received before m711: it comes first anyway
    expect(f.holdBack("a", "m801", -10, 1800)).toBe("SERVER_BUSY");
    expect(f.check("a", "m801", 1900)).toBe("SERVER_BUSY"); // m711's retry first
    expect(f.check("a", "m711", 2000)).toBeNull();
    expect(f.holdBack("a", "m711", 2000, 2100)).toBeNull(); // the retry that passed is re-posted itself
    expect(f.check("a", "m801", 2200)).toBeNull();
    expect(f.size).toBe(0);
    expect(f.holdBack("a", "m900", 2300, 2300)).toBeNull(); // no fence: re-posted
  });

  test("a held-back send takes its place by receive time, ahead of sends refused after the fence went up", () => {
    // m711..m713 pipelined; the owner refuses m711 (received at 0, refused at 10); m713 reaches the
    // fence at 12; then the owner moves and m712 (received at 5, unanswered) would be re-posted.
    const f = new RefusalFence();
    f.refused("a", "m711", "SERVER_BUSY", 10, 0);
    expect(f.check("a", "m713", 12)).toBe("SERVER_BUSY");
    expect(f.holdBack("a", "m712", 5, 20)).toBe("SERVER_BUSY");
    // The SDK retries in send order: m711, m712, m713, each the oldest in turn.
    expect(f.check("a", "m711", 30)).toBeNull();
    expect(f.check("a", "m712", 31)).toBeNull();
    expect(f.check("a", "m713", 32)).toBeNull();
    expect(f.size).toBe(0);
    // A send that passed the fence as the oldest (received after it went up) is re-posted as it is.
    f.refused("a", "m1", "SERVER_BUSY", 100, 90);
    f.refused("a", "m2", "SERVER_BUSY", 101, 95);
    expect(f.check("a", "m1", 110)).toBeNull();
    expect(f.holdBack("a", "m1", 110, 120)).toBeNull();
  });
});
