// Each shard's dedupe filter, kept in the file from a clean shutdown to the next start. Without
// it a start reads the whole dedupe window back from the store and hashes every key (~0.9M keys a
// second, session 34: minutes for a day of traffic), and until that ends every send with an id is
// looked up in the store. With it the start reads the filter's bytes and then only the keys
// logged after it.
//
// Correct because the log only grows at its end: an image holds every key of its shard logged up
// to `afterId` (the shard's filter took each key it accepted, and the keys its own rebuild read),
// and the rebuild goes on from `afterId`. An image is read once: taking it deletes it, in the same
// transaction, so an image never outlives the start that read it (a crash later rebuilds from the
// whole window, as before). Anything that does not fit (another shard count, window, build, byte
// order, a log id past the file's end) is deleted and not used: the rebuild reads everything.

import type { Database, Statement } from "bun:sqlite";
import { int32sOf } from "./blob-words.ts";
import type { FilterImage, FilterImagePart } from "../router/sent-filter.ts";

/** The layout of an image's rows; another value is read as foreign and not used. */
const IMAGE_FORMAT = 1;
/** Bit words are stored as the machine holds them: an image from the other byte order is foreign. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Part 0's meta: what the image is and where in the log it ends (madeAt: for whoever reads the file). */
interface ImageHead {
  format: number;
  littleEndian: boolean;
  afterId: number;
  madeAt: number;
  parts: number;
  bitsPerKey: number;
  hashes: number;
  windowMs: number;
}
/** A filter's meta (parts 1..n): its generation, size and keys. */
interface PartHead {
  g: number;
  capacity: number;
  n: number;
}

export type TakenImage =
  | { t: "none" }
  | { t: "image"; image: FilterImage; afterId: number; bytes: number }
  | { t: "foreign"; problem: string };

interface ImageRow {
  shards: number;
  part: number;
  meta: string;
  bits: Uint8Array;
}

export class FilterImages {
  readonly #db: Database;
  readonly #read: Statement<ImageRow, [number]>;
  readonly #insert: Statement<unknown, [number, number, number, string, Uint8Array]>;
  readonly #delete: Statement<unknown, [number]>;
  readonly #deleteOthers: Statement<unknown, [number]>;

  constructor(db: Database) {
    this.#db = db;
    this.#read = db.prepare<ImageRow, [number]>(
      "SELECT shards, part, meta, bits FROM dedupe_filter_images WHERE shard = CAST(?1 AS INTEGER) ORDER BY part",
    );
    this.#insert = db.prepare(
      "INSERT INTO dedupe_filter_images (shard, shards, part, meta, bits) VALUES (?1, ?2, ?3, ?4, ?5)",
    );
    this.#delete = db.prepare("DELETE FROM dedupe_filter_images WHERE shard = ?1");
    this.#deleteOthers = db.prepare("DELETE FROM dedupe_filter_images WHERE shards <> ?1");
  }

  /**
   * Keeps shard `shard`'s filter (of `shards`), replacing any image it had; `afterId`: the last
   * log id written when it was made. Call inside a transaction. Returns the bytes of its bits.
   */
  save(shard: number, shards: number, image: FilterImage, afterId: number, madeAt: number): number {
    this.#delete.run(shard);
    const filters: { head: PartHead; bits: Int32Array }[] = [];
    for (const { g, filters: fs } of image.gens) {
      for (const f of fs) filters.push({ head: { g, capacity: f.capacity, n: f.n }, bits: f.bits });
    }
    const head: ImageHead = {
      format: IMAGE_FORMAT,
      littleEndian: LITTLE_ENDIAN,
      afterId,
      madeAt,
      parts: filters.length,
      bitsPerKey: image.bitsPerKey,
      hashes: image.hashes,
      windowMs: image.windowMs,
    };
    this.#insert.run(shard, shards, 0, JSON.stringify(head), new Uint8Array(0));
    let bytes = 0;
    filters.forEach(({ head, bits }, i) => {
      this.#insert.run(
        shard,
        shards,
        i + 1,
        JSON.stringify(head),
        new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength),
      );
      bytes += bits.byteLength;
    });
    return bytes;
  }

  /**
   * Reads shard `shard`'s image and deletes it (one transaction: it is read once). `lastId`: the
   * log's last id now; an image that ends past it is not this file's.
   */
  take(shard: number, shards: number, lastId: number): TakenImage {
    return this.#db.transaction((): TakenImage => {
      // Images of another shard count are never read (their shards' keys are spread otherwise).
      this.#deleteOthers.run(shards);
      const rows = this.#read.all(shard);
      if (rows.length === 0) return { t: "none" };
      this.#delete.run(shard);
      return readImage(rows, shards, lastId);
    })();
  }

  /** Images kept now (shards' rows of part 0): for tests and the operator's inspection. */
  count(): number {
    return this.#db.query<{ n: number }, []>("SELECT count(*) AS n FROM dedupe_filter_images WHERE part = 0").get()!
      .n;
  }
}

/** An image from its rows (ordered by part), or why it cannot be used here. Pure. */
function readImage(rows: ImageRow[], shards: number, lastId: number): TakenImage {
  const foreign = (problem: string): TakenImage => ({ t: "foreign", problem });
  let head: ImageHead;
  try {
    head = JSON.parse(rows[0]!.meta) as ImageHead;
  } catch {
    return foreign("its head is not JSON");
  }
  if (rows[0]!.part !== 0 || head.format !== IMAGE_FORMAT) return foreign(`format ${head.format}, not ${IMAGE_FORMAT}`);
  if (head.littleEndian !== LITTLE_ENDIAN) return foreign("written on a machine of the other byte order");
  if (rows[0]!.shards !== shards) return foreign(`made with ${rows[0]!.shards} shards, this server runs ${shards}`);
  if (!Number.isSafeInteger(head.afterId) || head.afterId < 0 || head.afterId > lastId) {
    return foreign(`it ends at log id ${head.afterId}, the file's log ends at ${lastId}`);
  }
  if (rows.length !== head.parts + 1) return foreign(`${rows.length - 1} of its ${head.parts} filters are here`);
  const gens: FilterImage["gens"] = [];
  let bytes = 0;
  for (let i = 1; i < rows.length; i++) {
    const row = rows[i]!;
    let p: PartHead;
    try {
      p = JSON.parse(row.meta) as PartHead;
    } catch {
      return foreign(`filter ${i}'s head is not JSON`);
    }
    if (row.part !== i || row.bits.byteLength % 4 !== 0) return foreign(`filter ${i} is malformed`);
    const part: FilterImagePart = { capacity: p.capacity, n: p.n, bits: int32sOf(row.bits) };
    const last = gens[gens.length - 1];
    if (last && last.g === p.g) last.filters.push(part);
    else gens.push({ g: p.g, filters: [part] });
    bytes += row.bits.byteLength;
  }
  const image: FilterImage = { bitsPerKey: head.bitsPerKey, hashes: head.hashes, windowMs: head.windowMs, gens };
  return { t: "image", image, afterId: head.afterId, bytes };
}
