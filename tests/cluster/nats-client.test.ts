// The official NATS client under Bun (its own CI runs on Node only): core pub/sub, JetStream,
// KV, and — the part that matters for a cluster node — reconnecting after the server process is
// killed and restarted on the same port, with the JetStream file store intact.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { openLink } from "../../src/cluster/connect.ts";
import { type NatsFixture, startNats } from "../helpers/nats.ts";

let nats: NatsFixture;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.close();
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(20);
  }
}

describe("@nats-io client under Bun", () => {
  test("core pub/sub, JetStream publish and KV work", async () => {
    const link = await openLink({ servers: nats.urls, nodeId: "t1", replicas: 1 });
    const { nc } = link;
    const got: string[] = [];
    const sub = nc.subscribe("t.echo", { callback: (_e, m) => void got.push(m.string()) });
    for (let i = 0; i < 100; i++) nc.publish("t.echo", `m${i}`);
    await nc.flush();
    await until(() => got.length === 100);
    expect(got[99]).toBe("m99");
    sub.unsubscribe();

    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "T1", subjects: ["t1.>"] });
    const ack = await jetstream(nc).publish("t1.a", "x", { msgID: "id-1" });
    const dup = await jetstream(nc).publish("t1.a", "x", { msgID: "id-1" });
    expect(ack.seq).toBe(1);
    expect(dup.duplicate).toBe(true);

    const kv = await new Kvm(nc).create("T_KV");
    const rev = await kv.put("k", "v1");
    await expect(kv.update("k", "v2", rev + 1)).rejects.toThrow();
    expect(await kv.update("k", "v2", rev)).toBeGreaterThan(rev);
    await link.close();
  });

  test("reconnects after nats-server is killed and restarted on the same port; the file store survives", async () => {
    const states: string[] = [];
    const link = await openLink({ servers: nats.urls, nodeId: "t2", replicas: 1 }, (s) => states.push(s));
    const { nc } = link;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "T2", subjects: ["t2.>"] });
    const js = jetstream(nc);
    for (let i = 0; i < 50; i++) await js.publish("t2.x", `before-${i}`);

    const server = nats.servers[0]!;
    const oldPid = server.pid;
    await server.stop("SIGKILL");
    await until(() => link.state() === "down");
    await server.start();
    expect(server.pid).not.toBe(oldPid);
    await until(() => link.state() === "up");
    expect(link.reconnects()).toBe(1);
    expect(states).toEqual(["down", "up"]);

    // Core subscriptions are re-established by the client; JetStream works again.
    const got: string[] = [];
    nc.subscribe("live.t2", { callback: (_e, m) => void got.push(m.string()) });
    await nc.flush();
    nc.publish("live.t2", "after");
    await until(() => got.length === 1);
    const ack = await js.publish("t2.x", "after-restart");
    expect(ack.seq).toBe(51);
    const info = await jsm.streams.info("T2");
    expect(info.state.messages).toBe(51);
    const first = await jsm.streams.getMessage("T2", { seq: 1 });
    expect(first?.string()).toBe("before-0");
    await link.close();
  }, 30_000);
});
