// Failover time through the SDK: users spread over the nodes, each IrisClient given every node's
// URL (its own node first), send a steady stream to two others. One node is SIGKILLed: its users'
// SDKs fail over to the next URL, resume from their last processed seq and resend unacked sends
// (same ids). Failover time = kill → that user's first delivery on a connection to another node.
// Afterwards every acked message must have reached the application exactly once.

import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import type { ClusterRun } from "./cluster-nodes.ts";
import { sleep } from "./context.ts";
import { explainMissing } from "./cluster-diag.ts";

export interface FailoverOptions {
  perNode: number;
  /** Gap between one user's sends (ms). */
  gapMs: number;
  /** Sending before the kill, and after it (the dead node's owners are re-placed after down-after). */
  beforeKillMs: number;
  afterKillMs: number;
  /** Most time to wait for the last acks and deliveries. */
  settleTimeoutMs: number;
}

export interface VictimFailover {
  user: string;
  /** Its owner lived on the killed node (re-placed only once the node is seen down). */
  ownerDied: boolean;
  /** kill → first delivery on another node; null if it never received again. */
  ms: number | null;
}

export interface FailoverFigures {
  nodes: number;
  users: number;
  killedNode: string;
  sends: number;
  acked: number;
  /** Sends not acked by the deadline (the SDK was still retrying them). */
  unacked: number;
  deliveredToApp: number;
  /** Acked sends that never reached their recipient's application. */
  missing: number;
  duplicatesToApp: number;
  /** Server redeliveries the SDK recognised by (sender, id) and dropped: the dedupe at work. */
  sdkDroppedDuplicates: number;
  sdkResends: number;
  victims: VictimFailover[];
  /** When acked messages are missing: per recipient, and where they are (cluster-diag.ts). */
  diagnosis: string[];
}

/**
 * User names: user i's home node is i % N. The killed node's users alternate between an owner on
 * that node (re-placed once it is seen down) and an owner elsewhere (only the socket moves), so
 * both failover paths are measured.
 */
export function failoverUsers(n: number, perNode: number, victim: number, ownerIndex: (u: string) => number): string[] {
  const out: string[] = [];
  let j = 0;
  for (let i = 0; i < n * perNode; i++) {
    const home = i % n;
    const wantDied = home === victim && Math.floor(i / n) % 2 === 0;
    for (;; j++) {
      const u = `fo-${j}`;
      if (home !== victim || (ownerIndex(u) === victim) === wantDied || j > 100_000) break;
    }
    out.push(`fo-${j++}`);
  }
  return out;
}

interface State {
  names: string[];
  clients: IrisClient[];
  got: string[][];
  againAt: number[];
  killedAt: number;
}

function makeClients(c: ClusterRun, victim: number, st: State): void {
  const urls = c.nodes.map((n) => n.url);
  for (const [i, name] of st.names.entries()) {
    const home = i % urls.length;
    const client = new IrisClient({
      urls: [...urls.slice(home), ...urls.slice(0, home)],
      user: name,
      resendAfterMs: 1000,
    });
    client.onMessage((m) => {
      st.got[i]!.push(m.text());
      if (st.killedAt && !st.againAt[i] && client.url !== urls[victim]) st.againAt[i] = Date.now();
    });
    st.clients.push(client);
  }
}

/** One send: its recipient (index), its text, and whether its ack came back. */
interface Sent {
  to: number;
  text: string;
  acked: boolean;
  done: Promise<unknown>;
}

async function stream(c: ClusterRun, o: FailoverOptions, st: State, victim: number): Promise<Sent[]> {
  const users = st.clients.length;
  const acks: Sent[] = [];
  const t0 = Date.now();
  const killer = (async () => {
    await sleep(o.beforeKillMs);
    await c.kill(victim);
    st.killedAt = Date.now();
  })();
  const sender = async (i: number) => {
    for (let k = 0; Date.now() - t0 < o.beforeKillMs + o.afterKillMs; k++) {
      // Alternately to the next two users: every user hears from two senders.
      const to = (i + 1 + (k % 2)) % users;
      const s: Sent = { to, text: `${i}:${k}`, acked: false, done: Promise.resolve() };
      s.done = st.clients[i]!.send(st.names[to]!, s.text).then((_: SendStatus) => (s.acked = true), () => {});
      acks.push(s);
      await sleep(o.gapMs);
    }
  };
  await Promise.all([killer, ...st.clients.map((_, i) => sender(i))]);
  return acks;
}

/** Node 0 is killed; the cluster is left with N-1 nodes. */
export async function measureFailover(c: ClusterRun, o: FailoverOptions): Promise<FailoverFigures> {
  const victim = 0;
  const names = failoverUsers(c.nodes.length, o.perNode, victim, c.ownerIndex);
  const users = names.length;
  const st: State = {
    names,
    clients: [],
    got: Array.from({ length: users }, () => []),
    againAt: Array(users).fill(0),
    killedAt: 0,
  };
  makeClients(c, victim, st);
  try {
    await Promise.all(st.clients.map((x) => x.connect()));
    const acks = await stream(c, o, st, victim);
    // Acks by the deadline (the SDK keeps retrying the rest), then deliveries of the acked ones.
    await Promise.race([Promise.all(acks.map((a) => a.done)), sleep(o.settleTimeoutMs)]);
    const acked = acks.filter((a) => a.acked);
    const missingOf = () => acked.filter((a) => !st.got[a.to]!.includes(a.text)).length;
    const until = Date.now() + o.settleTimeoutMs;
    while (Date.now() < until && missingOf() > 0) await sleep(100);
    await sleep(500); // a duplicate would arrive now
    const diagnosis = missingOf() > 0 ? [...whoMisses(c, st, acked), ...await explainMissing(c)] : [];
    const unique = countUnique(st);
    const delivered = st.got.reduce((n, g) => n + g.length, 0);
    return {
      nodes: c.nodes.length,
      users,
      killedNode: c.ids[victim]!,
      sends: acks.length,
      acked: acked.length,
      unacked: acks.length - acked.length,
      deliveredToApp: delivered,
      missing: missingOf(),
      duplicatesToApp: delivered - unique,
      sdkDroppedDuplicates: st.clients.reduce((n, x) => n + x.stats.duplicatesDropped, 0),
      sdkResends: st.clients.reduce((n, x) => n + x.stats.resends, 0),
      victims: st.clients.map((_, i) => i).filter((i) => i % c.nodes.length === victim).map((i) => ({
        user: names[i]!,
        ownerDied: c.ownerIndex(names[i]!) === victim,
        ms: st.againAt[i] ? st.againAt[i]! - st.killedAt : null,
      })),
      diagnosis,
    };
  } finally {
    for (const x of st.clients) x.close();
  }
}

/** Per recipient with missing messages: how many, the first few, its node now and its owner before the kill. */
function whoMisses(c: ClusterRun, st: State, acked: Sent[]): string[] {
  const by = new Map<number, string[]>();
  for (const a of acked) if (!st.got[a.to]!.includes(a.text)) by.set(a.to, [...by.get(a.to) ?? [], a.text]);
  return [...by].map(([i, texts]) => {
    const node = c.nodes.findIndex((n) => n.url === st.clients[i]!.url);
    return `diagnosis: ${st.names[i]} misses ${texts.length} (${texts.slice(0, 6).join(" ")}); socket on ${
      c.ids[node] ?? "?"
    }, owner before the kill ${c.ids[c.ownerIndex(st.names[i]!)]}, got ${st.got[i]!.length}`;
  });
}

function countUnique(st: State): number {
  return st.got.reduce((n, g) => n + new Set(g).size, 0);
}
