// A retry whose original was numbered but never stored must be stored in the end, not refused for
// ever. god-mode under load (branch sn-god) kept 171 sends of two senders unacked to the end: their
// originals had seqs (the owner remembered the ids) but no row and no dedupe record in the store,
// so every retry went to the writer as a confirm, missed, and the sender was told "not stored
// yet; retry" again, until the id would age out of the owner's memory. Here a real owner talks to a
// real writer (real SQLite, real MessagePort); the test loses the original's append on the way.

import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMetricsBuffer, SLOT_WRITER, SlotMetrics } from "../../src/observe/metrics.ts";
import { expandAcks, isPackedAcks } from "../../src/router/packed-acks.ts";
import { Owner, type OwnerLimits } from "../../src/router/owner.ts";
import { SMALL_LIMITS } from "../helpers/owner-harness.ts";
import { isOwnerMsg, type PortMsg, type RouteMsg, type WriterReq } from "../../src/router/wire.ts";
import { InboxStore } from "../../src/store/inbox-store.ts";
import { Writer } from "../../src/store/writer.ts";

const limits: OwnerLimits = SMALL_LIMITS;

let dir: string;
let store: InboxStore;
let ownerSide: MessagePort;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "iris-confirm-miss-"));
});
afterEach(() => {
  ownerSide?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(2);
  }
}

test("a retry whose original's append was lost is refused once, then stored as new", async () => {
  store = InboxStore.open(join(dir, "iris.db"), { maxInboxPerUser: 1000, ttlMs: 0 });
  const writer = new Writer(store, new SlotMetrics(createMetricsBuffer(1), SLOT_WRITER), {
    flushMs: 0,
    batchRows: 10_000,
    dedupeWindowMs: 60_000,
  });
  const ch = new MessageChannel();
  writer.setPort(0, ch.port1);
  ownerSide = ch.port2;

  // What reaches the sender's shard (shard 0, the owner's too): acks and refusals, "id:status" / "id:CODE".
  const answers: string[] = [];
  let dropNextAppend = true;
  const owner = new Owner({
    self: 0,
    shards: 2,
    toShard: (_k: number, m: PortMsg) => {
      if (m.t === "sent") answers.push(`${m.id}:${m.status}`);
      if (m.t === "sendError") answers.push(`${m.id}:${m.code}`);
    },
    toWriter: (m: WriterReq) => {
      // The loss: the original's append never reaches the writer (how it was lost in god-mode is
      // not known; the owner had numbered it and remembered its id either way).
      if (m.t === "append" && dropNextAppend) return void (dropNextAppend = false);
      ownerSide.postMessage([m]);
    },
    now: () => Date.now(),
    underPressure: () => false,
  }, limits);
  ownerSide.onmessage = (e) => {
    for (const m of e.data as unknown[]) {
      const p = m as PortMsg;
      if (isPackedAcks(m)) expandAcks(m, (s) => answers.push(`${s.id}:${s.status}`));
      else if (p.t === "sent") answers.push(`${p.id}:${p.status}`);
      else if (p.t === "sendError") answers.push(`${p.id}:${p.code}`);
      else if (isOwnerMsg(p)) owner.handle(p);
    }
  };
  const send = (id: string): RouteMsg => ({
    t: "route",
    to: "u",
    from: "s",
    id,
    body: new TextEncoder().encode(id),
    ts: Date.now(),
    t0: Date.now(),
    o: 0,
    c: 7,
  });

  owner.handle(send("a")); // numbered once its box loads; its append is lost
  await waitFor(() => store.getUser("u") !== null);
  await Bun.sleep(20); // the load's reply has been handled: "a" has seq 1, no row
  expect(store.fetch("u", 0, 10)).toEqual([]);

  owner.handle(send("a")); // the SDK's resend: the store is asked, and it does not have "a"
  await waitFor(() => answers.length === 1);
  expect(answers).toEqual(["a:SERVER_BUSY"]);

  owner.handle(send("a")); // the retry after the refusal: stored now (main: refused again, for ever)
  await waitFor(() => answers.length === 2);
  expect(answers).toEqual(["a:SERVER_BUSY", "a:stored"]);
  const rows = store.fetch("u", 0, 10);
  expect(rows.map((r) => r.msgId)).toEqual(["a"]);
  expect(rows[0]!.seq).toBeGreaterThan(1); // a new seq: seq 1 stays a gap, never reused

  owner.handle(send("a")); // and from now on a retry is a duplicate, not a second row
  await waitFor(() => answers.length === 3);
  expect(answers[2]).toBe("a:duplicate");
  expect(store.fetch("u", 0, 10).length).toBe(1);
});
