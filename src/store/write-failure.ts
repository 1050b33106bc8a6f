// What the storage writer does when a transaction fails (disk full, I/O error): it never dies,
// and it never says "stored" for a row that is not. Appends of the failed batch are answered at
// once with a typed error (the SDK retries them with the same id), owners forget their ids for
// dedupe and count the requests as done; every other request is kept and retried after a back-off.
//
// Owners count appends and remembers together, in order ("committed n"), so a failed batch must
// answer both: a remember (the dedupe record of a message its recipient already acked) is counted
// now, so its sender hears the true "delivered", and its record is written on the next commit.

import type { AppendReq, PortMsg, RejectedReply, RememberReq, SendErrorMsg, WriterReq } from "../router/wire.ts";
import { unpackRemember } from "../router/packed-keys.ts";

/** A request and the port link it came on (replies go back on that link). */
export interface FailedOp<L> {
  k: L;
  r: WriterReq;
}

export interface FailurePlan<L> {
  /** Replies per link: sendErrors for the senders, rejections and commit counts for the owners. */
  replies: Map<L, PortMsg[]>;
  /** Requests to run again after the back-off (seq reservations, deletes, last-seen, reads). */
  retry: FailedOp<L>[];
  /** Dedupe records counted as committed now, to be written by the next transaction. */
  remembers: RememberReq[];
  /** Rows refused. */
  rows: number;
}

/** SQLite's "disk full" becomes STORE_FULL; other failures SERVER_BUSY (both retried by the SDK). */
export function failureCode(e: unknown): "STORE_FULL" | "SERVER_BUSY" {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("SQLITE_FULL") ? "STORE_FULL" : "SERVER_BUSY";
}

/**
 * Pure: the answers for a failed batch. `origin(shard)` is the current link of the sender's shard
 * (acks go to wherever that shard lives now), or undefined when it is down.
 */
export function planFailure<L>(
  ops: FailedOp<L>[],
  code: "STORE_FULL" | "SERVER_BUSY",
  origin: (shard: number) => L | undefined,
): FailurePlan<L> {
  const replies = new Map<L, PortMsg[]>();
  const push = (k: L | undefined, m: PortMsg) => {
    if (k === undefined) return;
    let q = replies.get(k);
    if (!q) replies.set(k, q = []);
    q.push(m);
  };
  const appends = new Map<L, number>();
  const retry: FailedOp<L>[] = [];
  const remembers: RememberReq[] = [];
  let rows = 0;
  const reason = code === "STORE_FULL" ? "disk full: message not stored; retry later" : "store error; retry later";
  const count = (k: L) => appends.set(k, (appends.get(k) ?? 0) + 1);
  for (const op of ops) {
    if (op.r.t === "remember" || op.r.t === "rememberPacked") {
      remembers.push(op.r.t === "remember" ? op.r : unpackRemember(op.r));
      count(op.k);
      continue;
    }
    if (op.r.t !== "append") {
      retry.push(op);
      continue;
    }
    const req: AppendReq = op.r;
    rows += req.rows.length;
    push(op.k, appendRefusal(req, code, reason, (o, m) => push(origin(o), m)));
    count(op.k);
  }
  // Answered, so no longer "unconfirmed": a writer restart must not replay them as if pending.
  for (const [k, n] of appends) push(k, { t: "committed", n });
  return { replies, retry, remembers, rows };
}

/**
 * Pure: an append answered without being stored. Each sender that hears acks (origin >= 0) gets a
 * typed, retryable refusal through `toSender`; the returned notice tells the owner to forget the
 * seqs, so a retry is numbered as new.
 */
export function appendRefusal(
  req: AppendReq,
  code: string,
  reason: string,
  toSender: (origin: number, m: SendErrorMsg) => void,
): RejectedReply {
  req.rows.forEach((row, j) => {
    const o = req.o[j]!;
    if (o >= 0) toSender(o, { t: "sendError", conn: req.c[j]!, id: row.msgId, code, reason });
  });
  return { t: "rejected", user: req.rows[0]?.recipient ?? "", seqs: req.rows.map((r) => r.seq) };
}

/** Back-off between retries of a failing store: doubling from BASE_MS, capped at MAX_MS. */
export class Backoff {
  static readonly BASE_MS = 50;
  static readonly MAX_MS = 2000;
  private failures = 0;

  next(): number {
    return Math.min(Backoff.BASE_MS * 2 ** this.failures++, Backoff.MAX_MS);
  }

  reset(): void {
    this.failures = 0;
  }

  get failing(): boolean {
    return this.failures > 0;
  }
}
