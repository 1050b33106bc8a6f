// The cluster writer's re-reads of a user's inbox (JsWriter.recheck) under a slow reply chain: the
// order gate asks again every few seconds while routes come in. Queued anew per ask, the re-reads
// piled up behind a stalled request and then ran one after another, holding every later lookup
// and page of the shard (docs/CLUSTER.md, "A liveness fault under NATS restarts"). One re-read
// that has not started yet answers every later ask: it starts after them.

import { expect, test } from "bun:test";
import { JsWriter } from "../../src/cluster/js-writer.ts";
import type { ClusterInbox } from "../../src/cluster/inbox.ts";
import type { LastSeen } from "../../src/cluster/last-seen.ts";
import type { SeqBlocks } from "../../src/cluster/seq-blocks.ts";
import type { SentWindow } from "../../src/cluster/sent-kv.ts";
import type { PortMsg } from "../../src/router/wire.ts";

test("re-reads asked while one waits in the reply chain share it; a later ask gets a read of its own", async () => {
  let reads = 0;
  let unblock = () => {};
  const blocked = new Promise<number>((r) => (unblock = () => r(0)));
  const inbox = { readBacklog: () => (reads++, Promise.resolve([])) } as unknown as ClusterInbox;
  const sent = { lookup: () => blocked } as unknown as SentWindow;
  const w = new JsWriter(inbox, {} as SeqBlocks, {} as LastSeen, sent, 60_000);
  const replies: PortMsg[] = [];
  w.setPort(0, { postMessage: (m) => replies.push(...m) });
  w.claims.opened("u", 1, 0);
  // A lookup stalls the chain (a NATS restart), and the gate asks for re-reads meanwhile.
  w.receive(0, [{ t: "lookup", user: "u", from: "s", id: "m", since: 0 }]);
  let done = 0;
  for (let i = 0; i < 20; i++) w.recheck("u", 0, () => done++);
  unblock();
  await Bun.sleep(20);
  expect(replies.map((m) => m.t)).toEqual(["lookedUp"]);
  expect(done).toBe(20); // every ask answered
  expect(reads).toBe(1); // by one read (was 20, one after another)
  w.recheck("u", 0, () => done++); // asked after that read started: a read of its own
  await Bun.sleep(20);
  expect([done, reads]).toEqual([21, 2]);
});
