// Output coalescing for logged-in v1 and JSON connections: the frames written to a connection
// during one event-loop turn (the SENT answers and live deliveries of a port batch, and of every
// WebSocket message read in one poll) are written together once the turn's handlers are done (a
// setImmediate: Bun runs microtasks after each WebSocket message, so a microtask would write once
// per message read, one syscall each): as one BUNDLE message for a
// connection granted bundles (protocol/v1-bundle.ts), else as the same separate messages inside
// one cork (one syscall instead of one per frame; the bytes on the wire are unchanged). Order is
// kept: a direct write (a backlog page, a closing error frame) first flushes what is queued.
// A long turn does not hold frames for all of it: `tick`, called before each message read,
// writes what has waited past OUTBOX_HOLD_MS (see limits.ts).

import { BUNDLE_MAX_BYTES, OUTBOX_HOLD_MS } from "../limits.ts";
import { type BundleDelivery, bundleOf, encodeDeliveries, V1_FLAG_BUNDLE } from "../protocol/v1-bundle.ts";
import { corkedOk, type Transport } from "./transports.ts";
import { stageProbe } from "../observe/stage-probe.ts";

/** Writes queued frames: one as itself, several as a BUNDLE or corked; false if a write was dropped. */
function writeAll(t: Transport, out: (string | Uint8Array)[], bundle: boolean, bytes: number): boolean {
  if (out.length === 1) return t.send(out[0]!) !== 0;
  if (bundle) return t.send(bundleOf(out as Uint8Array[], bytes)) !== 0;
  let ok = true;
  const writes = () => {
    for (const f of out) if (ok && t.send(f) === 0) ok = false;
  };
  if (t.cork) return corkedOk(t.cork(writes)) && ok;
  writes();
  return ok;
}

/** What the outbox needs of a session. */
export interface Bundled {
  readonly t: Transport;
  /** The v1 LOGIN flags granted; with V1_FLAG_BUNDLE queued frames leave as one BUNDLE message (all Uint8Array then). */
  flags: number;
  /** Frames queued this turn, or null when nothing is (most of the time: no array per idle session). */
  out: (string | Uint8Array)[] | null;
  outBytes: number;
}

/** True when the connection was granted bundles at login. */
export function bundled(s: { readonly flags: number }): boolean {
  return (s.flags & V1_FLAG_BUNDLE) !== 0;
}

export class Outbox<S extends Bundled> {
  private due: S[] = [];
  private scheduled = false;
  /** When the frames queued now started waiting (at the latest): the `tick` that saw `due` empty. */
  private openedAt = 0;

  /** `dropped` runs when the socket refused a write (the connection is unusable). */
  constructor(
    private readonly dropped: (s: S) => void,
    private readonly maxBytes = BUNDLE_MAX_BYTES,
    private readonly holdMs = OUTBOX_HOLD_MS,
  ) {}

  /**
   * Called before each message read (`now` = performance.now()): frames queued longer than the
   * hold go out now, ahead of what this message queues; otherwise they wait for the turn's end.
   */
  tick(now: number): void {
    if (this.due.length === 0) this.openedAt = now;
    else if (now - this.openedAt >= this.holdMs) {
      this.writeDue();
      this.openedAt = now;
    }
  }

  /** Queues one encoded frame for this turn's message. */
  push(s: S, frame: string | Uint8Array): void {
    const size = typeof frame === "string" ? frame.length : frame.byteLength;
    if (s.out !== null && s.outBytes + size > this.maxBytes) this.flush(s);
    if (s.out === null) {
      s.out = [];
      this.due.push(s);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushAll); // after every message read in this poll, not after each one
      }
    }
    s.out.push(frame);
    s.outBytes += size;
  }

  /** Writes what `s` has queued now; false if the socket dropped it. */
  flush(s: S): boolean {
    const out = s.out;
    if (out === null) return true;
    const bytes = s.outBytes;
    s.out = null;
    s.outBytes = 0;
    stageProbe?.written(s);
    if (out.length === 0 || writeAll(s.t, out, bundled(s), bytes)) return true;
    this.dropped(s);
    return false;
  }

  /** Forgets what `s` queued (its socket closed). */
  discard(s: S): void {
    s.out = null;
    s.outBytes = 0;
  }

  private readonly flushAll = (): void => {
    this.scheduled = false;
    this.writeDue();
    stageProbe?.turnEnd(performance.now());
  };

  /** Writes every queued session's frames (the turn's end, or a hold that ran out). */
  private writeDue(): void {
    const due = this.due;
    this.due = [];
    for (const s of due) this.flush(s);
  }

  /**
   * Deliveries for `s`: one queues with this turn's frames; several (a backlog page) flush the
   * queue and go out now as bundles of at most maxBytes. False if the socket dropped a write.
   */
  deliver(s: S, items: readonly BundleDelivery[]): boolean {
    if (items.length === 1) {
      this.push(s, encodeDeliveries(items, 0, 1));
      return true;
    }
    if (!this.flush(s)) return false;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      const d = items[i]!;
      // An upper bound (3 UTF-8 bytes per UTF-16 unit) keeps the split decision cheap.
      const size = 23 + 3 * (d.from.length + d.id.length) + d.body.byteLength;
      if (i > start && bytes + size > this.maxBytes) {
        if (s.t.send(encodeDeliveries(items, start, i)) === 0) return false;
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    return s.t.send(encodeDeliveries(items, start, items.length)) !== 0;
  }
}
