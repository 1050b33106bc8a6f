// A restarted peer shard's channel: re-posts reach it ahead of what was queued for it meanwhile
// (router/ports.ts reconnectPeer; per-sender order after an owner shard's death).

import { expect, test } from "bun:test";
import { createMetricsBuffer, SlotMetrics } from "../../src/observe/metrics.ts";
import { PortMesh } from "../../src/router/ports.ts";
import type { RouteMsg } from "../../src/router/wire.ts";

const route = (id: string): RouteMsg => ({
  t: "route",
  to: "r",
  from: "s",
  id,
  body: new Uint8Array(),
  ts: 1,
  t0: 0,
  o: 1,
  c: 7,
});

async function firstBatch(port: MessagePort): Promise<string[]> {
  const got: unknown[][] = [];
  port.onmessage = (e) => got.push(e.data as unknown[]);
  const end = Date.now() + 2000;
  while (got.length === 0 && Date.now() < end) await Bun.sleep(5);
  port.close();
  return (got[0] ?? []).map((m) => (m as RouteMsg).id);
}

test("sends re-posted to a restarted owner shard go ahead of a later send queued in the same turn", async () => {
  const mesh = new PortMesh(1, 2, new SlotMetrics(createMetricsBuffer(2), 3), () => {});
  const old = new MessageChannel();
  mesh.setPeer(0, old.port1);
  mesh.post(0, route("m1")); // to the owner that is about to die: lost with it, still unanswered
  mesh.dropPeer(0); // "down 0"
  mesh.post(0, route("m2")); // read in the same turn as the new channel, after the death
  const fresh = new MessageChannel();
  mesh.reconnectPeer(0, fresh.port1, () => {
    // what peerUp re-posts: every unanswered send for that owner, in send order
    mesh.post(0, route("m1"));
    mesh.post(0, route("m2"));
  });
  mesh.flush();
  old.port1.close();
  expect(await firstBatch(fresh.port2)).toEqual(["m1", "m2", "m2"]); // the queued copy follows (a duplicate)
});
