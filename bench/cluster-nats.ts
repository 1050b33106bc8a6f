// `bun run bench/cluster-nats.ts [--scale 1]`: the NATS figures the cluster design rests on,
// measured from Bun against a real nats-server started here (JetStream file storage, temp dir):
// core pub/sub, the batched cross-node port, JetStream append (R1, pipelined), backlog reads
// by direct get vs a short-lived ordered consumer, and purge-on-ack. Prints one line per figure.

import { type NatsLink, openLink } from "../src/cluster/connect.ts";
import { ClusterInbox } from "../src/cluster/inbox.ts";
import type { StoredRow } from "../src/cluster/inbox-codec.ts";
import { NodePort } from "../src/cluster/port.ts";
import { startNats, startNatsCluster } from "../tests/helpers/nats.ts";

const scale = Number(process.argv[process.argv.indexOf("--scale") + 1] || 1) || 1;
const CORE_MSGS = 1_000_000 * scale;
const PORT_ITEMS = 500_000 * scale;
const JS_MSGS = 50_000 * scale;
const JS_WINDOW = 1000; // publishes in flight, as an owner's batch to the store would be
const BACKLOG = 5000;
const BODY = new Uint8Array(100);

const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString("en-US")}/s`;

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}

async function corePubSub(a: NatsLink, b: NatsLink): Promise<void> {
  let got = 0;
  b.nc.subscribe("bench.core", { callback: () => void got++ });
  await b.nc.flush();
  const t0 = performance.now();
  const payload = new Uint8Array(16);
  for (let i = 0; i < CORE_MSGS; i++) {
    a.nc.publish("bench.core", payload);
    if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
  }
  await until(() => got === CORE_MSGS);
  console.log(`core pub/sub, 16 B, 2 connections: ${CORE_MSGS} msgs ${rate(CORE_MSGS, performance.now() - t0)}`);
}

async function port(a: NatsLink, b: NatsLink): Promise<void> {
  const isAny = (x: unknown): x is unknown => x !== null;
  const tx = new NodePort(a.nc, isAny);
  const rx = new NodePort(b.nc, isAny);
  let got = 0;
  rx.listen("b", 0, (items) => void (got += items.length));
  await b.nc.flush();
  const t0 = performance.now();
  for (let i = 0; i < PORT_ITEMS; i++) {
    tx.send("b", 0, { t: "route", to: "bob", from: "alice", id: `m${i}`, body: BODY, ts: i });
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await until(() => got === PORT_ITEMS);
  const ms = performance.now() - t0;
  console.log(
    `cross-node port, 100 B route items, ~500/tick: ${PORT_ITEMS} items ${rate(PORT_ITEMS, ms)}` +
      ` in ${tx.counters.batchesOut} publishes`,
  );
}

const row = (to: string, i: number): StoredRow => ({ to, seq: i + 1, from: "alice", id: `m${i}`, ts: i, body: BODY });

async function appendRate(inbox: ClusterInbox, label: string): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < JS_MSGS; i += JS_WINDOW) {
    const rows = Array.from({ length: JS_WINDOW }, (_, k) => row(`user${(i + k) % 1000}`, i + k));
    const res = await inbox.append(rows);
    if (!res.every((r) => r.ok)) throw new Error("append failed");
  }
  const r = rate(JS_MSGS, performance.now() - t0);
  console.log(`JetStream append ${label}, file, 100 B, ${JS_WINDOW} in flight: ${JS_MSGS} msgs ${r}`);
}

async function jetStream(a: NatsLink): Promise<void> {
  const inbox = await ClusterInbox.open(a.nc, { replicas: 1, ttlSec: 0 });
  await appendRate(inbox, "R1");
  let t0 = performance.now();

  const backlog = Array.from({ length: BACKLOG }, (_, i) => row("reader", i));
  for (let i = 0; i < BACKLOG; i += JS_WINDOW) await inbox.append(backlog.slice(i, i + JS_WINDOW));
  t0 = performance.now();
  const d = await inbox.readDirect("reader", 0, BACKLOG);
  console.log(
    `backlog read, direct get (1 request per msg): ${d.length} msgs ${rate(d.length, performance.now() - t0)}`,
  );
  t0 = performance.now();
  const o = await inbox.readOrdered("reader", 0, BACKLOG);
  console.log(`backlog read, ordered consumer per drain: ${o.length} msgs ${rate(o.length, performance.now() - t0)}`);
  t0 = performance.now();
  const h = await inbox.readBacklog("reader", 0, BACKLOG);
  console.log(
    `backlog read, hybrid (48 direct, then ordered): ${h.length} msgs ${rate(h.length, performance.now() - t0)}`,
  );
  t0 = performance.now();
  const empty = 1000;
  for (let i = 0; i < empty; i++) await inbox.readOrdered(`nobody${i}`, 0, 100);
  console.log(`empty-backlog check at login (one direct get): ${empty} logins ${rate(empty, performance.now() - t0)}`);
  t0 = performance.now();
  const logins = 200;
  for (let i = 0; i < logins; i++) await inbox.readOrdered(`user${i}`, 0, 100);
  console.log(`drains of 50-msg backlogs, ordered consumer: ${logins} drains ${rate(logins, performance.now() - t0)}`);
  t0 = performance.now();
  for (let i = 0; i < logins; i++) await inbox.readDirect(`user${i + logins}`, 0, 100);
  console.log(`drains of 50-msg backlogs, direct get: ${logins} drains ${rate(logins, performance.now() - t0)}`);
  t0 = performance.now();
  for (let i = 0; i < logins; i++) await inbox.readBacklog(`user${i + 2 * logins}`, 0, 100);
  console.log(`drains of 50-msg backlogs, hybrid: ${logins} drains ${rate(logins, performance.now() - t0)}`);
  t0 = performance.now();
  for (let i = 0; i < BACKLOG; i += 100) await inbox.deleteThrough("reader", d[i + 99]!.streamSeq);
  console.log(
    `delete on ack (purge per cumulative ack of 100): ${BACKLOG / 100} purges ${
      rate(BACKLOG / 100, performance.now() - t0)
    }`,
  );
}

const nats = await startNats();
try {
  const a = await openLink({ servers: nats.urls, nodeId: "a", replicas: 1 });
  const b = await openLink({ servers: nats.urls, nodeId: "b", replicas: 1 });
  console.log(`nats-server ${nats.servers[0]!.url} (pid ${nats.servers[0]!.pid}), Bun ${Bun.version}, scale ${scale}`);
  await corePubSub(a, b);
  await port(a, b);
  await jetStream(a);
  await a.close();
  await b.close();
} finally {
  await nats.close();
}

const cluster = await startNatsCluster(3);
try {
  const c = await openLink({ servers: cluster.urls, nodeId: "c", replicas: 3 });
  await appendRate(await ClusterInbox.open(c.nc, { replicas: 3, ttlSec: 0 }), "R3 (3 local servers)");
  await c.close();
} finally {
  await cluster.close();
}
