// Port garbage that passes the shape checks (chaos "PID corruption", src/chaos/garbage.ts) reaches
// the owner as real messages. Whatever it makes the owner do, the owner must never write a request
// the writer refuses: the writer drops a packed message whole when one row in it is bad, so one bad
// row took every append flushed with it. That lost acked messages in CI's god-mode (session 47): a
// garbage "loaded" with seqBase 0 numbered a route from 0, its row poisoned a pack of real appends,
// their rows were never stored, and their retries were answered "duplicate" once the recipient had
// acked past their seqs.

import { expect, test } from "bun:test";
import { garbageBatch } from "../../src/chaos/garbage.ts";
import type { OwnerLimits } from "../../src/router/owner.ts";
import { recordingOwner, SMALL_LIMITS } from "../helpers/owner-harness.ts";
import { isPackedAppends, packAppends } from "../../src/router/packed-appends.ts";
import { type AppendReq, isOwnerMsg, isPortMsg, isWriterReq, type WriterReq } from "../../src/router/wire.ts";

const limits: OwnerLimits = SMALL_LIMITS;

test("a loaded reply with a seq block below 1 is not a port message", () => {
  const loaded = { t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 };
  expect(isPortMsg(loaded)).toBe(true);
  expect(isPortMsg({ ...loaded, seqLimit: 0 })).toBe(true); // an empty block (a load without a reservation)
  expect(isPortMsg({ ...loaded, seqBase: 0 })).toBe(false);
  expect(isPortMsg({ ...loaded, seqBase: -1 })).toBe(false);
  expect(isPortMsg({ ...loaded, seqLimit: -1 })).toBe(false);
});

test("port garbage the guard lets through never makes an owner write a request the writer refuses", async () => {
  const written: WriterReq[][] = [];
  let taken = 0;
  // A fresh owner per seed: what garbage does depends on the state it meets (a box's first load).
  for (let seed = 1; seed <= 300; seed++) {
    const owner = recordingOwner(limits);
    for (const v of garbageBatch(200, seed)) {
      if (!isPortMsg(v) || !isOwnerMsg(v)) continue;
      taken++;
      owner.o.handle(v);
    }
    written.push(owner.toWriter);
  }
  await new Promise<void>((r) => setImmediate(r)); // a turn's remember leaves at its end
  const toWriter = written.flat();
  const appends = toWriter.filter((m): m is AppendReq => m.t === "append");
  expect(taken).toBeGreaterThan(1000);
  expect(appends.length).toBeGreaterThan(10); // garbage routes to "u" were numbered and stored
  const refused = appends.filter((a) => !isWriterReq(a) || !isPackedAppends(packAppends([a])));
  expect(refused.map((a) => a.rows.map((r) => `${r.recipient}#${r.seq}`).join(","))).toEqual([]);
  expect(toWriter.filter((m) => m.t !== "append" && !isWriterReq(m))).toEqual([]);
});
