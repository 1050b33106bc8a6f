// NATS itself fails under Iris load. (1) The single JetStream server (file storage) is killed
// with SIGKILL mid-load and restarted on the same port and store: no acked message is lost.
// (2) 3 NATS servers in a JetStream cluster, Iris with --cluster-replicas 3: one NATS server is
// killed mid-load and stays down: nothing acked is lost. Half of the recipients are online during
// the load, the other half log in afterwards (their messages were stored in JetStream), each to a
// node other than most senders'. Every acked message must reach its recipient exactly once on
// that first login, without a second one.

import { afterEach, expect, test } from "bun:test";
import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { startThreeNodes, type ThreeNodes } from "../helpers/cluster.ts";
import { startNats, startNatsCluster } from "../helpers/nats.ts";
import { until } from "../helpers/server.ts";

/** Senders and recipients (half of the recipients stay offline until the end). */
const PAIRS = 6;
/** Sends per sender, one every SEND_GAP_MS: the fault lands in the middle. */
const PER_SENDER = 60;
const SEND_GAP_MS = 25;
/** Every send acked within this after the fault (a NATS server restart plus an R3 election). */
const ACK_WAIT_MS = 30_000;
/** Every acked message delivered within this after the last recipient logged in. */
const DELIVERY_WAIT_MS = 15_000;

let cluster: ThreeNodes | null = null;
const clients: IrisClient[] = [];
/** When each phase of the running test ended (ms since its start): printed when it fails, so a
 * CI log that keeps only the test's output still tells where the time went. */
let timeline: string[] = [];
let testStart = 0;
const mark = (phase: string) => timeline.push(`${phase} +${Date.now() - testStart} ms`);

/** Runs a test body; on any failure prints every node's log tail and view, the NATS servers' log
 * tails, then the timeline, and rethrows. The timeline and the error (which carries what the test
 * saw) come last: a CI log keeps the lines just before a failed test's result. */
async function explained(body: () => Promise<void>): Promise<void> {
  timeline = [];
  testStart = Date.now();
  try {
    await body();
  } catch (e) {
    mark(`failed: ${String(e).split("\n")[0]}`);
    await dumpCluster();
    console.log(`TIMELINE ${timeline.join(" | ")}`);
    throw e;
  }
}

async function dumpCluster(): Promise<void> {
  if (!cluster) return;
  for (const [i, n] of cluster.nodes.entries()) {
    console.log(`--- iris${i + 1}\n${n.output().slice(-5000)}`);
    const view = await fetch(`${n.http}/v1/cluster`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text()).catch((e) => String(e));
    console.log(`VIEW iris${i + 1} ${view}`);
  }
  for (const s of cluster.nats.servers) console.log(`--- nats ${s.spec.name}\n${s.output().slice(-1500)}`);
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  names.clear();
  await cluster?.close();
  cluster = null;
});

/** Each client's user, for the diagnosis. */
const names = new Map<IrisClient, string>();
const client = (i: number, user: string) => {
  const c = new IrisClient({
    urls: [...cluster!.nodes.slice(i % 3), ...cluster!.nodes.slice(0, i % 3)].map((n) => n.url),
    user,
    resendAfterMs: 1000,
  });
  names.set(c, user);
  return c;
};

interface Sent {
  to: string;
  text: string;
  status: SendStatus | null;
}

/** What the test saw, printed when a wait fails: which sends/messages are missing and the nodes' logs. */
function diagnose(sent: Sent[], got: Map<string, string[]>): string {
  const unacked = sent.filter((s) => s.status === null).map((s) => s.text);
  const missing = sent.filter((s) => !got.get(s.to)?.includes(s.text)).map((s) => `${s.to}<${s.text}:${s.status}`);
  // Per client: reconnects, deliveries dropped as already seen (a seq not above its last), last seq.
  const stats = clients.map((c) =>
    `${names.get(c)}:r${c.stats.reconnects}/d${c.stats.duplicatesDropped}/seq${c.lastSeq}`
  );
  return `unacked: ${unacked.join(" ")}\nmissing: ${missing.join(" ")}\nclients: ${stats.join(" ")}`;
}

/** Waits for `cond`; when it times out, the error carries `explain()`'s account of what was seen. */
async function waitOrExplain(cond: () => boolean, what: string, ms: number, explain: () => string): Promise<void> {
  await until(cond, what, ms).catch((e) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${explain()}`);
  });
}

/** Runs the load, calls `fault` in the middle, and checks every acked message arrives once. */
async function loadThrough(fault: () => Promise<void>): Promise<string> {
  const senders = [...Array(PAIRS).keys()].map((i) => client(i, `s${i}`));
  const online = [...Array(PAIRS / 2).keys()].map((i) => client(i + 1, `r${i}`));
  clients.push(...senders, ...online);
  const got = new Map<string, string[]>();
  const listen = (c: IrisClient, user: string) => c.onMessage((m) => got.set(user, [...got.get(user) ?? [], m.text()]));
  online.forEach((c, i) => listen(c, `r${i}`));
  await Promise.all([...senders, ...online].map((c) => c.connect()));
  mark("clients connected");
  const sent: Sent[] = [];
  const run = async (i: number) => {
    for (let k = 0; k < PER_SENDER; k++) {
      const s: Sent = { to: `r${i % PAIRS}`, text: `s${i}:${k}`, status: null };
      sent.push(s);
      void senders[i]!.send(s.to, s.text).then((st) => (s.status = st));
      await Bun.sleep(SEND_GAP_MS);
    }
  };
  const load = Promise.all(senders.map((_, i) => run(i)));
  await Bun.sleep((PER_SENDER * SEND_GAP_MS) / 2);
  const t0 = Date.now();
  await fault();
  mark("fault done");
  await load;
  mark("load sent");
  const explain = () => diagnose(sent, got);
  await waitOrExplain(() => sent.every((s) => s.status !== null), "every send acked", ACK_WAIT_MS, explain);
  const ackedMs = Date.now() - t0;
  mark("all acked");
  expect(sent.every((s) => s.status === "delivered" || s.status === "stored" || s.status === "duplicate")).toBe(true);
  // The offline recipients log in now, each to a node other than most senders'.
  const late = [...Array(PAIRS / 2).keys()].map((i) => client(i + 2, `r${PAIRS / 2 + i}`));
  late.forEach((c, i) => listen(c, `r${PAIRS / 2 + i}`));
  clients.push(...late);
  await Promise.all(late.map((c) => c.connect()));
  mark("late recipients connected");
  const complete = () => sent.every((s) => got.get(s.to)?.includes(s.text));
  await waitOrExplain(complete, "every acked message at its recipient", DELIVERY_WAIT_MS, explain);
  mark("all delivered");
  await Bun.sleep(500); // a duplicate would arrive now
  for (const [, g] of got) expect(new Set(g).size).toBe(g.length);
  expect([...got.values()].reduce((a, g) => a + g.length, 0)).toBe(sent.length);
  const stored = sent.filter((s) => s.status === "stored").length;
  return `${sent.length} sends (${stored} stored), all acked ${ackedMs} ms after the fault, each delivered once`;
}

test("the JetStream server is killed and restarted mid-load: no acked message lost", async () => {
  await explained(async () => {
    const nats = await startNats();
    mark("nats up");
    cluster = await startThreeNodes({ nats });
    mark("iris nodes up");
    const server = cluster.nats.servers[0]!;
    const line = await loadThrough(async () => {
      await server.stop("SIGKILL");
      await Bun.sleep(1000);
      await server.start();
    });
    console.log(`NATS restart: ${line}`);
  });
}, 90_000);

test(
  "3 NATS servers, --cluster-replicas 3: one server killed mid-load, nothing acked lost",
  async () => {
    await explained(async () => {
      const nats = await startNatsCluster(3);
      mark("nats cluster up");
      cluster = await startThreeNodes({ nats, replicas: 3 });
      mark("iris nodes up");
      const line = await loadThrough(() => cluster!.nats.servers[1]!.stop("SIGKILL"));
      console.log(`R3, one NATS server killed: ${line}; ${timeline.join(", ")}`);
    });
  },
  90_000,
);
