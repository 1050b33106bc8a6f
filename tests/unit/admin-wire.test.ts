// Admin messages on the ports are validated like the rest (garbage never reaches a handler), and
// the histogram quantile the stats and console use is right on known inputs.

import { expect, test } from "bun:test";
import { quantileFromBuckets } from "../../src/observe/quantile.ts";
import { isPortMsg as isShardMsg, isWriterReq } from "../../src/router/wire.ts";

const reply = {
  t: "inspectReply",
  req: 1,
  user: "u",
  known: true,
  online: false,
  where: -1,
  phase: "offline",
  lastSeen: 0,
  pending: 0,
  holdback: 0,
  inbox: { rows: 2, bytes: 10, oldestTs: 5 },
  acted: false,
};

test("admin port messages: well-formed pass, malformed are rejected", () => {
  for (const t of ["inspect", "purge", "disconnect"]) {
    expect(isShardMsg({ t, user: "u", shard: 0, req: 3 })).toBe(true);
    expect(isShardMsg({ t, user: 5, shard: 0, req: 3 })).toBe(false);
    expect(isShardMsg({ t, user: "u", shard: 0.5, req: 3 })).toBe(false);
  }
  expect(isShardMsg(reply)).toBe(true);
  expect(isShardMsg({ ...reply, phase: 3 })).toBe(false);
  expect(isShardMsg({ ...reply, inbox: { rows: -1, bytes: 0, oldestTs: 0 } })).toBe(false);
  expect(isShardMsg({ ...reply, inbox: null })).toBe(false);
  const count = { t: "inboxCount", user: "u", req: 1, known: true, lastSeen: 0, rows: 0, bytes: 0, oldestTs: 0 };
  expect(isShardMsg(count)).toBe(true);
  expect(isShardMsg({ ...count, rows: "1" })).toBe(false);
  expect(isWriterReq({ t: "countInbox", user: "u", req: 1 })).toBe(true);
  expect(isWriterReq({ t: "countInbox", user: "u" })).toBe(false);
  expect(isShardMsg({ t: "evict", user: "u", conn: 1, why: "admin" })).toBe(true);
  expect(isShardMsg({ t: "evict", user: "u", conn: 1, why: "bored" })).toBe(false);
});

test("quantiles from buckets interpolate inside the bucket; empty is null", () => {
  const bounds = [1, 2, 4];
  expect(quantileFromBuckets(bounds, [0, 0, 0, 0], 0.5)).toBeNull();
  expect(quantileFromBuckets(bounds, [10, 0, 0, 0], 0.5)).toBe(0.5);
  expect(quantileFromBuckets(bounds, [0, 10, 0, 0], 0.5)).toBe(1.5);
  expect(quantileFromBuckets(bounds, [50, 0, 49, 1], 0.99)).toBe(4);
  expect(quantileFromBuckets(bounds, [0, 0, 0, 5], 0.5)).toBe(4); // open bucket: its lower bound
});
