// A three-node Iris cluster for the cluster chaos scenarios: a real nats-server (JetStream, file
// storage in a temp dir, tests/helpers/nats.ts) and three nodes started like any chaos server
// (fixed ports, so a node SIGKILLed and restarted comes back where its clients look for it). With
// `split`, node 3 runs in a network namespace of its own (tests/helpers/netns.ts) whose NATS link
// can be taken down while its clients stay connected. Everything is undone by the context.

import { type NatsFixture, startNats } from "../../tests/helpers/nats.ts";
import { NetNs } from "../../tests/helpers/netns.ts";
import type { Ctx } from "./scenario.ts";
import type { ChaosServer } from "./server.ts";

/** How long a fresh or healed cluster may take until every node sees all three up. */
const CONVERGE_MS = 30_000;

export class ClusterRig {
  private constructor(
    readonly nats: NatsFixture,
    readonly nodes: ChaosServer[],
    /** Node 3's namespace (split scenarios only). */
    readonly ns: NetNs | null,
  ) {}

  static async start(ctx: Ctx, o: { split: boolean; shards: number }): Promise<ClusterRig> {
    const ns = o.split ? NetNs.create() : null;
    if (ns) ctx.defer(() => ns.destroy()); // runs last: after the nodes and NATS are stopped
    const nats = await startNats(ns ? { host: "0.0.0.0" } : {});
    // A failed run keeps the JetStream store (what was stored and never acked) and each server's output.
    ctx.defer(() =>
      nats.close((dir, servers) => {
        ctx.evidence.preserve("nats", dir);
        for (const s of servers) if (ctx.evidence.kept) ctx.evidence.append(`nats/${s.spec.name}.log`, s.output());
      })
    );
    const port = nats.urls[0]!.split(":").at(-1);
    const nodes: ChaosServer[] = [];
    for (let i = 1; i <= 3; i++) {
      const inNs = ns !== null && i === 3;
      const url = inNs ? `nats://${ns.natsIp}:${port}` : nats.urls[0]!;
      const args = ["--cluster", url, "--node-id", `iris${i}`, ...(inNs ? ["--insecure"] : [])];
      nodes.push(await ctx.server({ shards: o.shards, args, ...(inNs ? { host: ns.nodeIp, wrap: ns.wrap } : {}) }));
    }
    const rig = new ClusterRig(nats, nodes, ns);
    await rig.converged();
    return rig;
  }

  /** Every node's URL, comma-separated (the clients' failover list). */
  get urls(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  /** The nodes a sniper may kill (not the namespaced one: its cut is the split's business). */
  get snipeable(): ChaosServer[] {
    return this.ns ? this.nodes.slice(0, 2) : this.nodes;
  }

  /** Waits until every live node is ready and sees three nodes up. */
  async converged(ms = CONVERGE_MS): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const ups = await Promise.all(this.nodes.map((n) => upCount(n.http)));
      if (ups.every((u) => u === 3)) return true;
      await Bun.sleep(200);
    }
    return false;
  }

  /** Problems at the end: a node that died on its own, or one that is not ready. */
  async problems(): Promise<string[]> {
    const p: string[] = [];
    for (const [i, n] of this.nodes.entries()) {
      if (n.unexpectedExits.length) p.push(`node iris${i + 1} died on its own (${n.unexpectedExits.join(", ")})`);
      const r = await fetch(`${n.http}/readyz`, { signal: AbortSignal.timeout(3000) }).then((x) => x.status, () => 0);
      if (r !== 200) p.push(`node iris${i + 1} not ready at the end (/readyz ${r})`);
    }
    return p;
  }
}

/** How many members a node's GET /v1/cluster shows up (-1 when it does not answer). */
async function upCount(http: string): Promise<number> {
  try {
    const r = await fetch(`${http}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
    const v = await r.json() as { ready: boolean; nodes: { state: string }[] };
    return v.ready ? v.nodes.filter((n) => n.state === "up").length : -1;
  } catch {
    return -1;
  }
}
