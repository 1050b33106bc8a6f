// How far the WAL runs ahead of the database file, read from the WAL index's header (the `-shm`
// file) without a SQLite call: the checkpointer (store/checkpointer.ts) looks every
// CHECKPOINT_WATCH_MS and passes as soon as a flood has added its share, instead of guessing a gap
// from the last pass (a flood that started after an idle gap filled the WAL before the first pass).
//
// The layout is SQLite's documented WAL-index format (sqlite.org/walformat.html), in the host's
// byte order: two copies of a 48-byte header (the writer writes the second copy first, then the
// first, so a reader that sees them differ caught a write in flight), then the checkpoint info.
// Only the figures a pass is planned from are read; SQLite's own readers still use its locks.

import { closeSync, openSync, readSync } from "node:fs";

/** Bytes read: both header copies and the checkpoint info (nBackfill sits at 96). */
export const WAL_INDEX_HEADER_BYTES = 136;
/** iVersion of the only WAL-index format SQLite 3.7.0 onwards writes. */
const WAL_INDEX_VERSION = 3007000;
const HEADER_COPY_BYTES = 48;
const OFF_VERSION = 0;
const OFF_IS_INIT = 12;
const OFF_PAGE_SIZE = 14;
const OFF_MX_FRAME = 16;
const OFF_SALT = 32;
const OFF_BACKFILL = 96;
/** A read that caught the writer between the two copies is tried again at most this many times. */
const READ_TRIES = 3;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The WAL as its index describes it: frames (one page each) written since it restarted, and copied. */
export interface WalIndex {
  pageSize: number;
  /** mxFrame: frames in the WAL since its last restart. */
  frames: number;
  /** nBackfill: of those, frames copied into the database file by a checkpoint. */
  copied: number;
  /** The WAL's first salt: new at every restart of the WAL, so a change says it restarted. */
  salt: number;
}

/**
 * Parses the start of a `-shm` file. "changing": the two header copies differ (a commit in
 * flight; read again). null: not an initialised WAL index of the known version.
 */
export function parseWalIndex(bytes: Uint8Array): WalIndex | "changing" | null {
  if (bytes.length < WAL_INDEX_HEADER_BYTES) return null;
  for (let i = 0; i < HEADER_COPY_BYTES; i++) {
    if (bytes[i] !== bytes[HEADER_COPY_BYTES + i]) return "changing";
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, WAL_INDEX_HEADER_BYTES);
  if (v.getUint32(OFF_VERSION, LITTLE_ENDIAN) !== WAL_INDEX_VERSION || bytes[OFF_IS_INIT] !== 1) return null;
  const size = v.getUint16(OFF_PAGE_SIZE, LITTLE_ENDIAN);
  // 65536 does not fit in 16 bits: SQLite stores it as 1.
  const pageSize = size === 1 ? 65536 : size;
  const frames = v.getUint32(OFF_MX_FRAME, LITTLE_ENDIAN);
  const copied = v.getUint32(OFF_BACKFILL, LITTLE_ENDIAN);
  if (pageSize < 512 || copied > frames) return null;
  return { pageSize, frames, copied, salt: v.getUint32(OFF_SALT, LITTLE_ENDIAN) };
}

/**
 * Pages another connection copied (the writer's own autocheckpoint) between two looks at the
 * index, with no pass of ours between: what the checkpointer exists to spare the writer. When the
 * WAL restarted between, every page that waited in the old one was copied first: counted, a lower
 * bound (pages added to it after the first look are not known).
 */
export function copiedByOthers(before: WalIndex, now: WalIndex): number {
  if (now.salt === before.salt && now.frames >= before.frames) return Math.max(0, now.copied - before.copied);
  return before.frames - before.copied + now.copied;
}

/** Reads a store's WAL index header; null when there is none to read (no -shm yet, or not one). */
export class WalIndexReader {
  private fd: number | null = null;
  private readonly buf = new Uint8Array(WAL_INDEX_HEADER_BYTES);

  constructor(private readonly dbPath: string) {}

  read(): WalIndex | null {
    if (this.fd === null) {
      try {
        this.fd = openSync(`${this.dbPath}-shm`, "r");
      } catch {
        return null; // not there yet: looked for again next time
      }
    }
    for (let i = 0; i < READ_TRIES; i++) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, WAL_INDEX_HEADER_BYTES, 0);
      } catch {
        this.close();
        return null;
      }
      if (n < WAL_INDEX_HEADER_BYTES) return null;
      const r = parseWalIndex(this.buf);
      if (r !== "changing") return r;
    }
    return null;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
