// Global shard addresses: a plain number per (node, shard), so the existing wire messages — whose
// origin and socket fields are shard numbers — can name a shard on another node without changing
// shape. Each node claims a small ordinal once (NATS KV, create-if-absent) and keeps it for life;
// its shard k is ordinal * SHARD_SPACE + k. A port mesh posts locally when the address is one of
// its node's, and to the node's NATS subject otherwise.

import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { createRacing } from "./create-race.ts";

export { globalShard, SHARD_SPACE, type ShardAddress, splitShard } from "../router/shard-space.ts";

export const ORDINALS_BUCKET = "iris_ordinals";
/** Ordinals tried before giving up (a cluster of this many nodes is far beyond the design). */
const MAX_ORDINAL = 100_000;

const keyOf = (ordinal: number) => `o${ordinal}`;

/** Ordinal <-> node id, both ways, as claimed in the bucket. */
export class Ordinals {
  private readonly byNode = new Map<string, number>();
  private readonly byOrdinal = new Map<number, string>();

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<Ordinals> {
    const o = new Ordinals(await createRacing(() => new Kvm(nc).create(ORDINALS_BUCKET, { history: 1, replicas })));
    await o.refresh();
    return o;
  }

  /** Re-reads every claim (called when a new node appears in the member list). */
  async refresh(): Promise<void> {
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      const ord = Number(k.slice(1));
      if (!e || e.operation !== "PUT" || !/^o\d+$/.test(k)) continue;
      this.byNode.set(e.string(), ord);
      this.byOrdinal.set(ord, e.string());
    }
  }

  /** This node's ordinal: the one it claimed before, else the lowest free one (create-if-absent). */
  async claim(nodeId: string): Promise<number> {
    const known = this.byNode.get(nodeId);
    if (known !== undefined) return known;
    for (let ord = 0; ord < MAX_ORDINAL; ord++) {
      if (this.byOrdinal.has(ord)) continue;
      try {
        await this.kv.create(keyOf(ord), nodeId);
      } catch {
        await this.refresh(); // someone else took it meanwhile
        if (this.byNode.get(nodeId) !== undefined) return this.byNode.get(nodeId)!;
        continue;
      }
      this.byNode.set(nodeId, ord);
      this.byOrdinal.set(ord, nodeId);
      return ord;
    }
    throw new Error("no free node ordinal");
  }

  ordinalOf(nodeId: string): number | undefined {
    return this.byNode.get(nodeId);
  }

  nodeOf(ordinal: number): string | undefined {
    return this.byOrdinal.get(ordinal);
  }
}
