// Last-seen times in a KV bucket, so that any node answers a status query for any user.

import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { token } from "./inbox-codec.ts";
import { createRacing } from "./create-race.ts";

export const SEEN_BUCKET = "iris_seen";

export class LastSeen {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<LastSeen> {
    return new LastSeen(await createRacing(() => new Kvm(nc).create(SEEN_BUCKET, { history: 1, replicas })));
  }

  async set(user: string, ts: number): Promise<void> {
    await this.kv.put(token(user), String(ts));
  }

  async get(user: string): Promise<number> {
    const e = await this.kv.get(token(user));
    const v = e && e.operation === "PUT" ? Number(e.string()) : 0;
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  }
}
