// The durable dedupe window of a cluster (issue 13's sent_ids, on NATS KV): one key per accepted
// (recipient, sender, id) holding the seq it got; the bucket's max-age is the window, so expiry
// needs no sweep. Keys are subject-safe base64url tokens.

import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { token } from "./inbox-codec.ts";

export const SENT_BUCKET = "iris_sent";

export interface SentKeyIn {
  recipient: string;
  sender: string;
  msgId: string;
  seq: number;
}

export class SentWindow {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number, windowMs: number): Promise<SentWindow> {
    return new SentWindow(await new Kvm(nc).create(SENT_BUCKET, { history: 1, replicas, ttl: windowMs }));
  }

  /** Records keys; resolves once every one is stored. */
  async remember(keys: readonly SentKeyIn[]): Promise<void> {
    await Promise.all(keys.map((k) => this.kv.put(keyOf(k.recipient, k.sender, k.msgId), String(k.seq))));
  }

  /** The seq (recipient, sender, id) got if it was accepted at or after `since` (ms), else 0. */
  async lookup(recipient: string, sender: string, msgId: string, since: number): Promise<number> {
    const e = await this.kv.get(keyOf(recipient, sender, msgId));
    if (!e || e.operation !== "PUT" || e.created.getTime() < since) return 0;
    const seq = Number(e.string());
    return Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
  }
}

function keyOf(recipient: string, sender: string, msgId: string): string {
  // An empty id has an empty token; "_" keeps every KV key token non-empty.
  return `${token(recipient)}.${token(sender)}._${token(msgId)}`;
}
