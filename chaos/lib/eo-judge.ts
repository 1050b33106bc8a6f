// The exactly-once checker's verdict, from the files its client processes leave (pure: the files'
// contents in, counts out). Every id a sender recorded as acked must be in exactly one recipient's
// processed log, once; no log may hold an id that was never sent; ids from one sender reach one
// recipient in the order they were sent (their number n in "<sender>-<n>").

import { idNumber, SenderOrder } from "./sender-order.ts";

export interface SenderFiles {
  user: string;
  /** Ids 0..next-1 were handed to the SDK (some may never have gone out before a crash). */
  next: number;
  /** "id status" lines. */
  acks: string[];
}
export interface RecipientFiles {
  user: string;
  /** "from id seq" lines, only the committed ones. */
  log: string[];
}
export interface Judgement {
  sent: number;
  acked: number;
  delivered: number;
  lost: number;
  duplicated: number;
  phantom: number;
  reordered: number;
  refused: number;
  missingExamples: string[];
  reorderedExamples: string[];
}

export function judge(senders: SenderFiles[], recipients: RecipientFiles[]): Judgement {
  const next = new Map(senders.map((s) => [s.user, s.next]));
  const acked = new Set<string>();
  let refused = 0;
  for (const s of senders) {
    for (const line of s.acks) {
      const [id, status] = line.split(" ");
      if (!id) continue;
      if (status === "error") refused++;
      else acked.add(id);
    }
  }
  const times = new Map<string, number>();
  let phantom = 0;
  const order = new SenderOrder(5);
  for (const r of recipients) {
    for (const line of r.log) {
      const [from, id] = line.split(" ");
      if (!from || !id) continue;
      const seen = (times.get(id) ?? 0) + 1;
      times.set(id, seen);
      if (!id.startsWith(`${from}-`) || !(idNumber(id) < (next.get(from) ?? 0))) phantom++;
      // A repeat counts as duplicated below, not again as a reorder.
      if (seen === 1) order.see(r.user, from, id);
    }
  }
  const missing = [...acked].filter((id) => !times.has(id));
  let duplicated = 0;
  for (const c of times.values()) if (c > 1) duplicated += c - 1;
  return {
    sent: senders.reduce((n, s) => n + s.next, 0),
    acked: acked.size,
    delivered: times.size,
    lost: missing.length,
    duplicated,
    phantom,
    reordered: order.count,
    refused,
    missingExamples: missing.slice(0, 5),
    reorderedExamples: order.examples,
  };
}
