// `bun run bench/cluster-pairs.ts [--pairs 20] [--seconds 5]`: 3 Iris nodes (dist/iris, --cluster,
// 1 shard each) + 1 nats-server, started here. Same run, side by side: pairs whose sender,
// recipient and recipient's owner are all on one node (no network hop) vs pairs spread over three
// nodes (route, delivery and acks all cross NATS). Reports msgs/s and send→receive p50/p99.

import { IrisClient } from "../src/client/index.ts";
import { Placement } from "../src/cluster/placement.ts";
import { startNats } from "../tests/helpers/nats.ts";
import { type RunningServer, startServer } from "../tests/helpers/server.ts";

const arg = (name: string, d: number) => Number(process.argv[process.argv.indexOf(name) + 1] || d) || d;
const PAIRS = arg("--pairs", 20);
const SECONDS = arg("--seconds", 5);
const WINDOW = 50; // sends in flight per sender
const owners = new Placement([1, 2, 3].map((i) => ({ id: `iris${i}`, shards: 1 })));
const nodeOf = (user: string) => Number(owners.ownerOf(user)!.node.slice(4)) - 1;

interface Pair {
  to: string;
  sender: IrisClient;
  recipient: IrisClient;
  lat: number[];
  got: number;
}

/** Recipients named so that their owner is where we want it. */
function recipients(kind: "same" | "cross", n: number): { user: string; owner: number }[] {
  const out: { user: string; owner: number }[] = [];
  for (let i = 0; out.length < n; i++) out.push({ user: `${kind}-r${i}`, owner: nodeOf(`${kind}-r${i}`) });
  return out;
}

async function pair(nodes: RunningServer[], kind: "same" | "cross", r: { user: string; owner: number }): Promise<Pair> {
  const o = r.owner;
  const [sNode, rNode] = kind === "same" ? [o, o] : [(o + 1) % 3, (o + 2) % 3];
  const sender = new IrisClient({ url: nodes[sNode]!.url, user: `${r.user}-s` });
  const rc = new IrisClient({ url: nodes[rNode]!.url, user: r.user });
  const p: Pair = { to: r.user, sender, recipient: rc, lat: [], got: 0 };
  rc.onMessage((m) => {
    p.got++;
    p.lat.push(Date.now() - Number(m.text()));
  });
  await rc.connect();
  await p.sender.connect();
  return p;
}

async function drive(p: Pair, until: number): Promise<void> {
  const one = async (): Promise<void> => {
    while (Date.now() < until) await p.sender.send(p.to, String(Date.now()));
  };
  await Promise.all(Array.from({ length: WINDOW }, one));
}

const pct = (a: number[], q: number) => a.sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * q))] ?? 0;

const nats = await startNats();
const nodes: RunningServer[] = [];
try {
  for (let i = 1; i <= 3; i++) {
    nodes.push(await startServer({ shards: 1, args: ["--cluster", nats.urls[0]!, "--node-id", `iris${i}`] }));
  }
  await Bun.sleep(2500); // every node sees every heartbeat
  for (const kind of ["same", "cross"] as const) {
    const pairs = await Promise.all(recipients(kind, PAIRS).map((r) => pair(nodes, kind, r)));
    const t0 = Date.now();
    await Promise.all(pairs.map((p) => drive(p, t0 + SECONDS * 1000)));
    await Bun.sleep(500);
    const ms = Date.now() - t0;
    const got = pairs.reduce((s, p) => s + p.got, 0);
    const lat = pairs.flatMap((p) => p.lat);
    console.log(
      `${kind}-node: ${PAIRS} pairs, ${WINDOW} in flight each: ${Math.round(got / (ms / 1000))} msgs/s, ` +
        `send→receive p50 ${pct(lat, 0.5)} ms p99 ${pct(lat, 0.99)} ms (${got} msgs)`,
    );
    for (const p of pairs) p.sender.close(), p.recipient.close();
  }
} finally {
  for (const n of nodes) await n.stop();
  await nats.close();
}
