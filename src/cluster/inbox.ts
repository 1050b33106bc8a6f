// The cluster's durable inbox on JetStream: one stream (file storage, the configured replicas),
// one subject per recipient (see inbox-codec.ts), no consumer per user. "Stored" means the
// PubAck came back: JetStream has the message on the configured number of replicas. A cumulative
// ack deletes with one purge of the recipient's subject below a stream seq.

import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { createRacing } from "./create-race.ts";
import {
  decodeRow,
  dedupeKey,
  INBOX_PREFIX,
  INBOX_STREAM,
  inboxSubject,
  type ReadRow,
  rowHeaders,
  type StoredRow,
} from "./inbox-codec.ts";

/** JetStream's dedupe window: covers SDK retries (seconds) and node failover (seconds to a minute). */
export const DEDUPE_WINDOW_MS = 5 * 60_000;
/** Backlog reads start with this many direct gets (no server state, ~1 RTT each), then switch to an
 * ordered consumer (~5x the rate on long backlogs, but a few ms to set up): see docs/CLUSTER.md. */
export const DIRECT_FIRST = 48;
/** How long a backlog read may wait for the next message of an ordered consumer. */
const ORDERED_FETCH_EXPIRES_MS = 2000;
/** API timeout for creating a read's ordered consumer (it is set up in a few ms when healthy). */
const ORDERED_CREATE_TIMEOUT_MS = 1500;
/**
 * After an ordered read failed, backlogs are read by single gets only for this long. With a NATS
 * server of three dead, the meta leader may place the consumer on the dead peer: about one
 * creation in three then timed out (5 s each, holding every later reply of the writer).
 */
const ORDERED_OFF_MS = 30_000;
const NS_PER_MS = 1_000_000;

export type AppendResult =
  | { ok: true; streamSeq: number; duplicate: boolean }
  | { ok: false; error: string };

export interface InboxCounters {
  /** Appends that got a PubAck, and their publish-to-PubAck time summed (ms). */
  acked: number;
  ackMsSum: number;
  appended: number;
  duplicates: number;
  appendErrors: number;
  garbage: number;
  /** Ordered backlog reads that failed and were finished by single gets. */
  orderedFallbacks: number;
}

export interface InboxOptions {
  replicas: number;
  /** Seconds a stored message is kept; 0 = forever (as --inbox-ttl). */
  ttlSec: number;
}

export class ClusterInbox {
  readonly counters: InboxCounters = {
    acked: 0,
    ackMsSum: 0,
    appended: 0,
    duplicates: 0,
    appendErrors: 0,
    garbage: 0,
    orderedFallbacks: 0,
  };

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /**
     * With replicas, a direct get may be answered by any replica, also one that has not yet
     * applied a message the leader has acknowledged: a backlog read would come back short after a
     * PubAck, and the owner would go live past stored messages (found when a NATS server of three
     * was killed: they reached their recipient only at its next login). With replicas, reads go to
     * the stream leader (STREAM.MSG.GET, same next_by_subj query), which has every acked message.
     */
    private readonly leaderReads: boolean,
    /** The client for ordered reads: a short API timeout (see ORDERED_CREATE_TIMEOUT_MS). */
    private readonly jsOrdered: JetStreamClient,
  ) {}

  /** Ordered reads are off until this time (performance.now()) after one failed. */
  private orderedOffUntil = 0;

  /** Creates the stream if missing (idempotent across nodes: same config from every node). */
  static async open(nc: NatsConnection, o: InboxOptions): Promise<ClusterInbox> {
    const jsm = await jetstreamManager(nc);
    const config = {
      name: INBOX_STREAM,
      subjects: [`${INBOX_PREFIX}.>`],
      storage: "file" as const,
      num_replicas: o.replicas,
      max_age: o.ttlSec * 1000 * NS_PER_MS,
      duplicate_window: DEDUPE_WINDOW_MS * NS_PER_MS,
      allow_direct: true,
    };
    await createRacing(async () => {
      try {
        await jsm.streams.info(INBOX_STREAM);
      } catch {
        await jsm.streams.add(config);
      }
    });
    return new ClusterInbox(jetstream(nc), jsm, o.replicas > 1, jetstream(nc, { timeout: ORDERED_CREATE_TIMEOUT_MS }));
  }

  /** Appends rows, pipelined; each result says whether JetStream acknowledged that row. */
  append(rows: readonly StoredRow[]): Promise<AppendResult[]> {
    return Promise.all(rows.map((r) => this.appendOne(r)));
  }

  private async appendOne(r: StoredRow): Promise<AppendResult> {
    const t0 = performance.now();
    try {
      const ack = await this.js.publish(inboxSubject(r.to), r.body, {
        msgID: dedupeKey(r.to, r.from, r.id, r.seq),
        headers: rowHeaders(r),
      });
      this.counters.acked++;
      this.counters.ackMsSum += performance.now() - t0;
      if (ack.duplicate) this.counters.duplicates++;
      else this.counters.appended++;
      return { ok: true, streamSeq: ack.seq, duplicate: ack.duplicate };
    } catch (e) {
      this.counters.appendErrors++;
      return { ok: false, error: (e as Error).message };
    }
  }

  private keep(row: ReadRow | null): row is ReadRow {
    if (row === null) this.counters.garbage++;
    return row !== null;
  }

  /** A page of the user's backlog after `afterStreamSeq`: short backlogs (and the common empty
   * one) by direct get, the rest of a long one by one short-lived ordered consumer. */
  async readBacklog(user: string, afterStreamSeq: number, max: number): Promise<ReadRow[]> {
    const head = await this.readDirect(user, afterStreamSeq, Math.min(max, DIRECT_FIRST));
    if (head.length < Math.min(max, DIRECT_FIRST) || head.length === max) return head;
    const after = head.at(-1)!.streamSeq;
    if (performance.now() >= this.orderedOffUntil) {
      try {
        return head.concat(await this.readOrdered(user, after, max - head.length));
      } catch {
        this.counters.orderedFallbacks++;
        this.orderedOffUntil = performance.now() + ORDERED_OFF_MS;
      }
    }
    return head.concat(await this.readDirect(user, after, max - head.length));
  }

  /** Backlog by direct get: one request per message (2.9 has no batched direct get). */
  async readDirect(user: string, afterStreamSeq: number, max: number): Promise<ReadRow[]> {
    const subject = inboxSubject(user);
    const out: ReadRow[] = [];
    let seq = afterStreamSeq + 1;
    while (out.length < max) {
      const m = await this.nextOf(subject, seq);
      if (!m) break;
      const row = decodeRow(m.subject, m.seq, m.header, m.data);
      if (this.keep(row)) out.push(row);
      seq = m.seq + 1;
    }
    return out;
  }

  /** The first message of `subject` at or after stream seq `seq` (see leaderReads), or null. */
  private nextOf(subject: string, seq: number): Promise<StoredMsg | null> {
    const q = { next_by_subj: subject, seq };
    return this.leaderReads
      ? this.jsm.streams.getMessage(INBOX_STREAM, q as typeof q & { seq: number }) // 2.9 takes next_by_subj here too
      : this.jsm.direct.getMessage(INBOX_STREAM, q);
  }

  /** Backlog by a short-lived ordered consumer (server-side ephemeral, gone after the read). */
  async readOrdered(user: string, afterStreamSeq: number, max: number): Promise<ReadRow[]> {
    const subject = inboxSubject(user);
    // An empty backlog is the common case at login: one direct get answers it without a consumer.
    const first = await this.nextOf(subject, afterStreamSeq + 1);
    if (!first) return [];
    const c = await this.jsOrdered.consumers.get(INBOX_STREAM, { filter_subjects: subject, opt_start_seq: first.seq });
    const out: ReadRow[] = [];
    const it = await c.fetch({ max_messages: max, expires: ORDERED_FETCH_EXPIRES_MS });
    let pending = Infinity;
    for await (const m of it) {
      const row = decodeRow(m.subject, m.seq, m.headers, m.data);
      if (this.keep(row)) out.push(row);
      pending = m.info.pending;
      if (pending === 0 || out.length >= max) break;
    }
    await c.delete().catch(() => {});
    // A fetch that ended (expired, link lost) while the consumer still saw messages pending is a
    // short read, not the end of the backlog: the caller must not take it for one.
    if (pending > 0 && out.length < max) throw new Error(`short backlog read of ${user}: ${pending} pending`);
    return out;
  }

  /** How many messages the user has stored (the server counts per subject). */
  async countOf(user: string): Promise<number> {
    const subject = inboxSubject(user);
    const info = await this.jsm.streams.info(INBOX_STREAM, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }

  /** Deletes the user's stored messages up to and including `streamSeq` (one cumulative ack). */
  async deleteThrough(user: string, streamSeq: number): Promise<number> {
    const r = await this.jsm.streams.purge(INBOX_STREAM, { filter: inboxSubject(user), seq: streamSeq + 1 });
    return r.purged;
  }

  /** Deletes one message (a row stored out of seq order, which a subject purge cannot single out). */
  deleteOne(streamSeq: number): Promise<boolean> {
    return this.jsm.streams.deleteMessage(INBOX_STREAM, streamSeq, false);
  }

  /** The stream's state and, with replicas, its current leader. */
  info(): ReturnType<JetStreamManager["streams"]["info"]> {
    return this.jsm.streams.info(INBOX_STREAM);
  }

  /** How many messages the user has stored. */
  async backlog(user: string): Promise<number> {
    const subject = inboxSubject(user);
    const info = await this.jsm.streams.info(INBOX_STREAM, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }
}
