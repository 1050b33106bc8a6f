// Last-seen writes of a cluster writer (src/cluster/seen-writer.ts), against a fake store whose
// puts finish when the test says: newest time per user, a bounded number of puts in flight (a mass
// logout must not queue the node's heartbeat behind thousands of puts), nothing dropped.

import { expect, test } from "bun:test";
import { SEEN_IN_FLIGHT, SeenWriter } from "../../src/cluster/seen-writer.ts";

/** A store that records every put and holds it until `finishAll`. */
function heldStore() {
  const stored = new Map<string, number>();
  let open: (() => void)[] = [];
  let inFlight = 0, maxInFlight = 0;
  const store = {
    set(user: string, ts: number): Promise<void> {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise<void>((r) =>
        open.push(() => {
          inFlight--;
          stored.set(user, ts);
          r();
        })
      );
    },
  };
  const finishAll = () => {
    const now = open;
    open = [];
    for (const f of now) f();
  };
  return { store, stored, finishAll, max: () => maxInFlight };
}

const once = (write: () => Promise<void>) => write();

test("a mass logout: at most SEEN_IN_FLIGHT puts at once, every user's newest time stored", async () => {
  const h = heldStore();
  const w = new SeenWriter(h.store, once);
  const users = 20 * SEEN_IN_FLIGHT;
  for (let i = 0; i < users; i++) w.put(`u${i}`, 1);
  for (let i = 0; i < users; i += 7) w.put(`u${i}`, 2); // newer times while waiting or in flight
  const settled = w.settle(5000);
  for (let i = 0; i < 100 && w.size > 0; i++) {
    h.finishAll();
    await Bun.sleep(0);
  }
  await settled;
  expect(h.max()).toBe(SEEN_IN_FLIGHT);
  expect(h.stored.size).toBe(users);
  for (let i = 0; i < users; i++) expect(h.stored.get(`u${i}`)).toBe(i % 7 === 0 ? 2 : 1);
});

test("a failed put is retried with the newest time; a stopped writer drops what is left", async () => {
  const h = heldStore();
  let failures = 1;
  const retry = async (write: () => Promise<void>) => {
    for (;;) {
      try {
        if (failures-- > 0) throw new Error("jetstream is not enabled");
        return await write();
      } catch { /* again */ }
    }
  };
  const w = new SeenWriter(h.store, retry);
  w.put("a", 1);
  w.put("a", 3);
  for (let i = 0; i < 10 && w.size > 0; i++) {
    await Bun.sleep(0);
    h.finishAll();
  }
  await w.settle(1000);
  expect(h.stored.get("a")).toBe(3);
  const stopped = new SeenWriter(h.store, () => Promise.reject(new Error("stopped")));
  stopped.put("b", 1);
  await stopped.settle(1000);
  expect(stopped.size).toBe(0);
});
