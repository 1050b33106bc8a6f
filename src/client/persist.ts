// The SDK's persistence hook: what a client must remember so that exactly-once survives a page
// reload or a process restart, not only a reconnect. The app hands the client an IrisStorage; the
// client restores from it on construction and saves after every change that matters:
// - the last processed seq (saved after the message handlers ran, so a restart resumes past it),
// - the recent (sender, id) window (a resend that reached us under a new seq is still filtered),
// - the unacked sends (saved before they go on the wire, so a restarted sender resends them with the
//   same ids and the server's dedupe recognises them).
// No Bun- or Node-only module is imported here: the file adapter reaches node:fs at run time only.

import { fromBase64 } from "../protocol/bytes.ts";

/** Everything the client persists, as plain JSON. */
export interface IrisSavedState {
  /** Format version: a state of another version is ignored, not misread. */
  v: 1;
  user: string;
  lastSeq: number;
  /** Recent (sender, id) pairs, oldest first. */
  seen: [string, string][];
  /** Sends the server has not acked yet, in send order; bodies in base64. */
  unacked: { id: string; to: string; body: string }[];
}

/**
 * Where a client keeps its state. Either method may be synchronous (localStorage, a file) or return
 * a promise (IndexedDB); with a synchronous load the state is restored inside the constructor.
 */
export interface IrisStorage {
  load(): IrisSavedState | null | Promise<IrisSavedState | null>;
  save(state: IrisSavedState): void | Promise<void>;
}

/** The subset of the Web Storage API the adapter needs (localStorage, sessionStorage). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Checks the shape of a loaded state; anything else is treated as "nothing saved". */
export function validSavedState(x: unknown, user: string): IrisSavedState | null {
  if (typeof x !== "object" || x === null) return null;
  const s = x as Partial<IrisSavedState>;
  if (s.v !== 1 || s.user !== user || typeof s.lastSeq !== "number" || !Number.isSafeInteger(s.lastSeq)) return null;
  if (!Array.isArray(s.seen) || !Array.isArray(s.unacked)) return null;
  const pairOk = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "string");
  const sendOk = (u: { id?: unknown; to?: unknown; body?: unknown }) =>
    typeof u === "object" && u !== null && typeof u.id === "string" && typeof u.to === "string" &&
    typeof u.body === "string";
  if (!s.seen.every(pairOk) || !s.unacked.every(sendOk)) return null;
  return s as IrisSavedState;
}

/** Keeps the state as JSON under `key` in localStorage or sessionStorage (or anything alike). */
export function webStorage(store: KeyValueStore, key: string): IrisStorage {
  return {
    load() {
      const raw = store.getItem(key);
      if (raw === null) return null;
      try {
        return JSON.parse(raw) as IrisSavedState;
      } catch {
        return null;
      }
    },
    save(state) {
      store.setItem(key, JSON.stringify(state));
    },
  };
}

interface FsSubset {
  readFileSync(path: string, enc: "utf8"): string;
  writeFileSync(path: string, data: string): void;
  renameSync(from: string, to: string): void;
  existsSync(path: string): boolean;
}

/**
 * Keeps the state in a JSON file (Bun, Node 22+). Each save writes a temporary file and renames it
 * over the old one, so a process killed mid-save leaves the previous state, never half a file.
 */
export function fileStorage(path: string): IrisStorage {
  const proc = (globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.("node:fs") as FsSubset | undefined;
  if (!fs) throw new Error("fileStorage needs Bun or Node 22+ (process.getBuiltinModule)");
  const tmp = `${path}.tmp`;
  return {
    load() {
      if (!fs.existsSync(path)) return null;
      try {
        return JSON.parse(fs.readFileSync(path, "utf8")) as IrisSavedState;
      } catch {
        return null;
      }
    },
    save(state) {
      fs.writeFileSync(tmp, JSON.stringify(state));
      fs.renameSync(tmp, path);
    },
  };
}

/** What the client hands over to be saved: its own collections, read once per save. */
export interface ClientParts {
  lastSeq: number;
  /** Dedupe keys, oldest first, as the client keeps them: `${from}\0${id}`. */
  seenKeys: Iterable<string>;
  unacked: Iterable<{ id: string; to: string; body: Uint8Array }>;
}

/** The newest `window` pairs of the dedupe window and every unacked send, as plain JSON. */
export function toSavedState(user: string, p: ClientParts, window: number): IrisSavedState {
  return {
    v: 1,
    user,
    lastSeq: p.lastSeq,
    seen: Array.from(p.seenKeys).slice(-window).map((k) => k.split("\0", 2) as [string, string]),
    unacked: Array.from(p.unacked, (x) => ({ id: x.id, to: x.to, body: toBase64(x.body) })),
  };
}

/** A loaded state back in the client's shapes; null when there is none or it is not valid. */
export function fromSavedState(
  raw: unknown,
  user: string,
): { lastSeq: number; seenKeys: string[]; unacked: { id: string; to: string; body: Uint8Array }[] } | null {
  const s = validSavedState(raw, user);
  if (!s) return null;
  return {
    lastSeq: s.lastSeq,
    seenKeys: s.seen.map(([from, id]) => from + "\0" + id),
    unacked: s.unacked.map((u) => ({ id: u.id, to: u.to, body: fromBase64(u.body) })),
  };
}

function toBase64(b: Uint8Array): string {
  let bin = "";
  // Chunked so a large body does not overflow the argument limit of fromCharCode.
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin);
}

/**
 * Serialises saves: at most one in flight, and the newest state wins. A synchronous storage is
 * written at once; an asynchronous one gets the latest snapshot when the previous save settles.
 */
export class SaveQueue {
  private busy = false;
  private next: (() => IrisSavedState) | null = null;

  constructor(private readonly storage: IrisStorage, private readonly onError: (e: Error) => void) {}

  /** Saves the state `snapshot` returns (called lazily, so a burst of changes costs one snapshot). */
  save(snapshot: () => IrisSavedState): void {
    if (this.busy) {
      this.next = snapshot;
      return;
    }
    let r: void | Promise<void>;
    try {
      r = this.storage.save(snapshot());
    } catch (e) {
      return this.onError(e as Error);
    }
    if (!(r instanceof Promise)) return;
    this.busy = true;
    r.catch((e: Error) => this.onError(e)).finally(() => {
      this.busy = false;
      const n = this.next;
      this.next = null;
      if (n) this.save(n);
    });
  }
}
