// The durable dedupe window of a cluster (issue 13's sent_ids, on NATS KV): one key per accepted
// (recipient, sender, id) holding the seq it got; the bucket's max-age is the window, so expiry
// needs no sweep. Keys are subject-safe base64url tokens.

import { jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { token, untoken } from "./inbox-codec.ts";
import { createRacing } from "./create-race.ts";

export const SENT_BUCKET = "iris_sent";
/** The stream behind the bucket (NATS KV naming), read directly to list the window. */
const SENT_STREAM = `KV_${SENT_BUCKET}`;
const KEY_PREFIX = `$KV.${SENT_BUCKET}.`;
/** How long one scan page may wait for the next key (the stream's end is known beforehand). */
const SCAN_FETCH_EXPIRES_MS = 2000;

/** One key of the window as a scan reads it (no value: the filter needs only the key and time). */
export interface SentKeyOut {
  recipient: string;
  sender: string;
  msgId: string;
  ts: number;
}

export interface SentScanPage {
  keys: SentKeyOut[];
  /** Stream seq of the last key read: the next page starts after it. */
  lastSeq: number;
  done: boolean;
}

export interface SentKeyIn {
  recipient: string;
  sender: string;
  msgId: string;
  seq: number;
}

export class SentWindow {
  private constructor(
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection, replicas: number, windowMs: number): Promise<SentWindow> {
    const kv = await createRacing(() => new Kvm(nc).create(SENT_BUCKET, { history: 1, replicas, ttl: windowMs }));
    return new SentWindow(kv, jetstream(nc), await jetstreamManager(nc));
  }

  /**
   * A page of the window's keys after stream seq `afterSeq` (a filter rebuild). The bucket keeps
   * one message per key (history 1) and drops it after the window, so the stream is the window.
   * Read by one short-lived ordered consumer, headers only (the values are not needed).
   */
  async scan(afterSeq: number, limit: number): Promise<SentScanPage> {
    const { state } = await this.jsm.streams.info(SENT_STREAM);
    if (state.messages === 0 || afterSeq >= state.last_seq) return { keys: [], lastSeq: afterSeq, done: true };
    const c = await this.js.consumers.get(SENT_STREAM, { opt_start_seq: afterSeq + 1, headers_only: true });
    const keys: SentKeyOut[] = [];
    let lastSeq = afterSeq;
    let pending = 1;
    try {
      const it = await c.fetch({ max_messages: limit, expires: SCAN_FETCH_EXPIRES_MS });
      for await (const m of it) {
        lastSeq = m.seq;
        pending = m.info.pending;
        const k = parseKey(m.subject, Math.floor(m.info.timestampNanos / 1e6));
        if (k) keys.push(k);
        if (pending === 0 || lastSeq >= state.last_seq) break;
      }
    } finally {
      await c.delete().catch(() => {});
    }
    return { keys, lastSeq, done: pending === 0 || lastSeq >= state.last_seq };
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

/** Pure: a scanned subject back to its key (null for anything that is not one of ours). */
export function parseKey(subject: string, ts: number): SentKeyOut | null {
  if (!subject.startsWith(KEY_PREFIX)) return null;
  const parts = subject.slice(KEY_PREFIX.length).split(".");
  if (parts.length !== 3 || !parts[2]!.startsWith("_")) return null;
  const recipient = untoken(parts[0]!);
  const sender = untoken(parts[1]!);
  const msgId = untoken(parts[2]!.slice(1));
  if (recipient === null || sender === null || msgId === null) return null;
  return { recipient, sender, msgId, ts };
}

function keyOf(recipient: string, sender: string, msgId: string): string {
  // An empty id has an empty token; "_" keeps every KV key token non-empty.
  return `${token(recipient)}.${token(sender)}._${token(msgId)}`;
}
