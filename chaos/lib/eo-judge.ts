// The exactly-once checker's verdict, from the files its client processes leave (pure: the files'
// contents in, counts out). Every id a sender recorded as acked must be in exactly one recipient's
// processed log, once; no log may hold an id that was never sent; ids from one sender reach one
// recipient in the order they were sent (their number n in "<sender>-<n>").

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

const idNumber = (id: string): number => Number(id.slice(id.lastIndexOf("-") + 1));

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
  let reordered = 0;
  const reorderedExamples: string[] = [];
  for (const r of recipients) {
    const lastFrom = new Map<string, number>();
    for (const line of r.log) {
      const [from, id] = line.split(" ");
      if (!from || !id) continue;
      times.set(id, (times.get(id) ?? 0) + 1);
      const n = idNumber(id);
      if (!id.startsWith(`${from}-`) || !(n < (next.get(from) ?? 0))) phantom++;
      if (n <= (lastFrom.get(from) ?? -1)) {
        reordered++;
        if (reorderedExamples.length < 5) reorderedExamples.push(`${r.user}:${id} after ${from}-${lastFrom.get(from)}`);
      }
      lastFrom.set(from, Math.max(n, lastFrom.get(from) ?? -1));
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
    reordered,
    refused,
    missingExamples: missing.slice(0, 5),
    reorderedExamples,
  };
}
