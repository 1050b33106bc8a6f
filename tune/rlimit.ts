// RLIMIT_NOFILE through libc's getrlimit/setrlimit via bun:ffi. Neither Bun nor Node exposes
// setrlimit, and raising the soft limit to the hard one is the only fd tuning a process can
// do to itself without root.

import { dlopen, FFIType, type Library } from "bun:ffi";
import { UNLIMITED_THRESHOLD } from "./parse.ts";

export interface RawNoFile {
  /** Infinity when the kernel reports RLIM_INFINITY. */
  soft: number;
  hard: number;
  /** The library that answered, for the probe's source column. */
  library: string;
}

// RLIMIT_NOFILE differs by OS: 7 on Linux, 8 on macOS and the BSDs.
function rlimitNoFile(): number | null {
  if (process.platform === "linux") return 7;
  if (process.platform === "darwin") return 8;
  return null;
}

function libcCandidates(): string[] {
  if (process.platform === "linux") return ["libc.so.6", "libc.so"];
  if (process.platform === "darwin") return ["libc.dylib", "/usr/lib/libSystem.B.dylib"];
  return [];
}

const symbols = {
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
} as const;

type Libc = Library<typeof symbols>;

/** Run `use` with libc opened, closing it after; null when no candidate could be opened. */
function withLibc<T>(use: (libc: Libc, name: string) => T): T | null {
  for (const name of libcCandidates()) {
    let libc: Libc;
    try {
      libc = dlopen(name, symbols);
    } catch {
      continue; // try the next name (musl, older macOS layouts)
    }
    try {
      return use(libc, name);
    } finally {
      libc.close();
    }
  }
  return null;
}

// struct rlimit is two 64-bit rlim_t on both 64-bit Linux and macOS: 16 bytes.
function toNumber(value: bigint): number {
  return value >= BigInt(UNLIMITED_THRESHOLD) ? Infinity : Number(value);
}

function readLimit(libc: Libc, resource: number): { soft: number; hard: number } | null {
  const buffer = new BigUint64Array(2);
  if (libc.symbols.getrlimit(resource, buffer) !== 0) return null;
  return { soft: toNumber(buffer[0] ?? 0n), hard: toNumber(buffer[1] ?? 0n) };
}

/** Current RLIMIT_NOFILE via libc, or null when FFI is unavailable or the call fails. */
export function getNoFileLimit(): RawNoFile | null {
  const resource = rlimitNoFile();
  if (resource === null) return null;
  try {
    return withLibc((libc, name) => {
      const limit = readLimit(libc, resource);
      return limit ? { ...limit, library: name } : null;
    });
  } catch {
    return null;
  }
}

/**
 * Set the soft RLIMIT_NOFILE to `target` (the hard limit stays). `target` must be finite:
 * Linux refuses values above fs.nr_open and macOS above kern.maxfilesperproc, so the caller
 * clamps an infinite hard limit first. Returns the soft limit in force afterwards, or null
 * when FFI is unavailable.
 */
export function setNoFileSoft(target: number): number | null {
  const resource = rlimitNoFile();
  if (resource === null) return null;
  try {
    return withLibc((libc) => {
      const buffer = new BigUint64Array(2);
      if (libc.symbols.getrlimit(resource, buffer) !== 0) return null;
      const soft = toNumber(buffer[0] ?? 0n);
      if (soft >= target) return soft; // never lower a limit someone already raised
      buffer[0] = BigInt(Math.floor(target)); // buffer[1] (hard) goes back exactly as read
      libc.symbols.setrlimit(resource, buffer); // failure shows up in the re-read below
      return readLimit(libc, resource)?.soft ?? null;
    });
  } catch {
    return null;
  }
}
