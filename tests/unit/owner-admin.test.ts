// The owner's side of the admin API, driven message by message: it acts first (evict, delete),
// then asks the writer to count, and answers the asking shard with the count plus its own figures.
// It never creates per-user state for a lookup.

import { beforeEach, expect, test } from "bun:test";
import { defaultOwnerLimits, Owner } from "../../src/router/owner.ts";
import type { InspectReply, PortMsg, WriterReq } from "../../src/router/wire.ts";

let toShard: { k: number; m: PortMsg }[];
let toWriter: WriterReq[];
let o: Owner;
beforeEach(() => {
  toShard = [];
  toWriter = [];
  o = new Owner({
    self: 0,
    shards: 1,
    toShard: (k, m) => toShard.push({ k, m }),
    toWriter: (m) => toWriter.push(m),
    now: () => 5000,
    underPressure: () => false,
  }, defaultOwnerLimits);
});

const counts = () => toWriter.filter((m): m is Extract<WriterReq, { t: "countInbox" }> => m.t === "countInbox");
const replies = () => toShard.filter(({ m }) => m.t === "inspectReply") as { k: number; m: InspectReply }[];
const answerCount = (rows: number, known: boolean) => {
  const c = counts().at(-1)!;
  o.handle({ t: "inboxCount", user: c.user, req: c.req, known, lastSeen: 42, rows, bytes: rows * 10, oldestTs: 7 });
};

test("a lookup of a user the owner holds nothing for asks the writer only, and echoes the asker's id", () => {
  o.handle({ t: "inspect", user: "ghost", shard: 3, req: 99 });
  expect(toWriter).toEqual([{ t: "countInbox", user: "ghost", req: counts()[0]!.req }]); // no load: no box made
  answerCount(0, false);
  const [r] = replies();
  expect(r!.k).toBe(3);
  expect(r!.m).toMatchObject({ req: 99, user: "ghost", known: false, online: false, where: -1, acted: false });
});

test("an online user: disconnect evicts the connection (admin) and the reply shows its figures", () => {
  o.handle({ t: "attach", user: "u", shard: 1, conn: 8, v0: false, resume: 0 });
  o.handle({ t: "loaded", user: "u", seqBase: 1, seqLimit: 100, lastSeen: 0 });
  toShard = [];
  toWriter = [];
  o.handle({ t: "disconnect", user: "u", shard: 0, req: 1 });
  expect(toShard[0]).toEqual({ k: 1, m: { t: "evict", user: "u", conn: 8, why: "admin" } });
  answerCount(2, true);
  expect(replies()[0]!.m).toMatchObject({ known: true, online: true, where: 1, acted: true, inbox: { rows: 2 } });
});

test("purge deletes every row before the count, so the count is after the purge", () => {
  o.handle({ t: "purge", user: "p", shard: 2, req: 5 });
  expect(toWriter.map((m) => m.t)).toEqual(["delete", "countInbox"]);
  expect(toWriter[0]).toEqual({ t: "delete", user: "p", upTo: Number.MAX_SAFE_INTEGER });
  answerCount(0, true);
  expect(replies()[0]!.m).toMatchObject({ req: 5, acted: true, known: true, lastSeen: 42, inbox: { rows: 0 } });
});

test("a writer restart re-asks pending counts (and repeats a pending purge); stale replies are ignored", () => {
  o.handle({ t: "purge", user: "p", shard: 2, req: 5 });
  o.handle({
    t: "inboxCount",
    user: "other",
    req: counts()[0]!.req,
    known: true,
    lastSeen: 0,
    rows: 1,
    bytes: 1,
    oldestTs: 1,
  });
  expect(replies()).toEqual([]); // id matches, user does not: not an answer to this request
  toWriter = [];
  o.writerRestarted();
  expect(toWriter.map((m) => m.t)).toEqual(["delete", "countInbox"]);
  answerCount(0, true);
  expect(replies().length).toBe(1);
});
