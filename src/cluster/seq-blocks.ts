// Per-recipient seq blocks reserved in a KV bucket with compare-and-set on the key's revision.
// The value is the highest seq ever handed out for the user; a reservation moves it up by a
// block, and only the reservation whose CAS succeeds may use that block. So whichever node owns
// a user — before, during or after a hand-over — no seq is ever used twice: a new owner reserves
// above everything any earlier owner could have used, and the rest of an old block is a gap.
// The value also names where the current owner's claim began ("<high-water> <claim's first seq>";
// older values have only the high-water): a new claim learns where the one before it began
// (handover.ts: rows numbered below that came from an owner before the previous one).

import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { token } from "./inbox-codec.ts";
import { createRacing } from "./create-race.ts";

export const SEQ_BUCKET = "iris_seq";
/** CAS attempts before giving up. Every round of a race has one winner, so k racers need <= k rounds;
 * in practice only two would-be owners of one user ever race (during a hand-over). */
const MAX_CAS_ATTEMPTS = 32;
/** Random pause after a lost race, so that racers spread out instead of colliding again. */
const CAS_JITTER_MS = 3;

export interface SeqBlock {
  first: number;
  last: number;
}

/** A reservation: the block, and the first seq of the claim that held the user before (0: none known). */
export interface Reserved extends SeqBlock {
  prevFirst: number;
  /** The block opened a new claim (its first seq is recorded as the claim's start). */
  opened: boolean;
}

/**
 * Pure: whether a reservation opens a claim. `claim` is true (always), false (never), or the first
 * seq of the caller's claim: a new one opens unless that claim is still the user's latest, that
 * is, unless no other owner opened one since (docs/CLUSTER.md, "a claim superseded").
 */
export function opensClaim(claim: boolean | number, curFirst: number): boolean {
  return typeof claim === "boolean" ? claim : claim !== curFirst;
}

/** Pure: the block after high-water `hi`. */
export function nextBlock(hi: number, size: number): SeqBlock {
  return { first: hi + 1, last: hi + size };
}

export function parseHighWater(v: Uint8Array): number | null {
  return parseSeqValue(v)?.hi ?? null;
}

/** The high-water and the current claim's first seq (0 in values written before claims existed). */
export function parseSeqValue(v: Uint8Array): { hi: number; first: number } | null {
  const m = /^(\d{1,15})(?: (\d{1,15}))?$/.exec(new TextDecoder().decode(v));
  return m ? { hi: Number(m[1]), first: Number(m[2] ?? 0) } : null;
}

export class SeqBlocks {
  conflicts = 0;

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas: number): Promise<SeqBlocks> {
    return new SeqBlocks(await createRacing(() => new Kvm(nc).create(SEQ_BUCKET, { history: 1, replicas })));
  }

  /** The highest seq ever handed out for `user` (0 if none). */
  async highWater(user: string): Promise<number> {
    const e = await this.kv.get(token(user));
    return e && e.operation === "PUT" ? parseHighWater(e.value) ?? 0 : 0;
  }

  /**
   * Reserves the next `size` seqs for `user`; resolves only once the reservation is stored. When
   * it opens a new owner claim (`opensClaim`), the block's first seq is recorded as the claim's start.
   */
  async reserve(user: string, size: number, claim: boolean | number = false): Promise<Reserved> {
    const key = token(user);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const e = await this.kv.get(key);
      // Nobody deletes these keys; if an operator did, refuse rather than restart numbering at 1.
      if (e && e.operation !== "PUT") throw new Error(`seq high-water of ${user} was deleted; refusing to reuse seqs`);
      const cur = e ? parseSeqValue(e.value) : { hi: 0, first: 0 };
      if (cur === null) throw new Error(`seq high-water of ${user} is corrupt`);
      const b = nextBlock(cur.hi, size);
      const opened = opensClaim(claim, cur.first);
      const value = `${b.last} ${opened ? b.first : cur.first}`;
      try {
        // create() fails if the key appeared meanwhile, update() if it moved: both mean "retry".
        if (e) await this.kv.update(key, value, e.revision);
        else await this.kv.create(key, value);
        return { ...b, prevFirst: cur.first, opened };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        this.conflicts++;
        await Bun.sleep(Math.random() * CAS_JITTER_MS);
      }
    }
    throw new Error(`seq reservation for ${user} kept conflicting`);
  }
}

function isCasConflict(e: unknown): boolean {
  const msg = String((e as Error)?.message ?? e);
  return /wrong last sequence|key exists/i.test(msg);
}
