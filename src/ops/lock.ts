// One running instance per data dir: an exclusive flock(2) on `<data-dir>/iris.lock`, taken
// through libc with bun:ffi (neither Bun nor Node exposes flock). The kernel drops the lock when
// the process dies for any reason, SIGKILL included, so a crashed instance never leaves a stale
// lock behind. The file also holds the holder's PID, for the message a second instance prints.

import { dlopen, FFIType, type Library, read } from "bun:ffi";
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

export const LOCK_FILE = "iris.lock";

// <sys/file.h>: same values on Linux and macOS.
const LOCK_EX = 2;
const LOCK_NB = 4;
// "Would block": the lock is held by another open file description. EWOULDBLOCK = EAGAIN.
const EWOULDBLOCK_LINUX = 11;
const EWOULDBLOCK_DARWIN = 35;

const symbols = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
} as const;

export type LockResult =
  | { kind: "locked"; fd: number; path: string }
  | { kind: "held"; path: string; pid: number | null }
  | { kind: "unsupported"; path: string; reason: string }
  | { kind: "failed"; path: string; reason: string };

function openLibc(): { lib: Library<typeof symbols>; errno: () => number } | null {
  const names = process.platform === "linux"
    ? ["libc.so.6", "libc.so"]
    : process.platform === "darwin"
    ? ["libc.dylib", "/usr/lib/libSystem.B.dylib"]
    : [];
  // errno lives in thread-local storage; libc hands out its address.
  const errnoFn = process.platform === "darwin" ? "__error" : "__errno_location";
  for (const name of names) {
    try {
      const lib = dlopen(name, { ...symbols, [errnoFn]: { args: [], returns: FFIType.ptr } });
      const loc = (lib.symbols as unknown as Record<string, () => number | null>)[errnoFn]!;
      return {
        lib: lib as unknown as Library<typeof symbols>,
        errno: () => {
          const p = loc();
          return p ? read.i32(p as never, 0) : -1;
        },
      };
    } catch {
      continue;
    }
  }
  return null;
}

/** The PID written by the instance that holds the lock, if it wrote one. */
export function lockHolder(dir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(dir, LOCK_FILE), "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the data-dir lock for the life of this process (the fd is deliberately never closed; the
 * kernel releases it at exit). The directory must exist.
 */
export function lockDataDir(dir: string): LockResult {
  const path = resolve(dir, LOCK_FILE);
  const libc = openLibc();
  if (!libc) return { kind: "unsupported", path, reason: "flock is not available on this platform" };
  let fd: number;
  try {
    // "a+": create if missing, never truncate a file another instance may be writing its PID to.
    fd = openSync(path, "a+", 0o644);
  } catch (e) {
    return { kind: "failed", path, reason: (e as Error).message };
  }
  const rc = libc.lib.symbols.flock(fd, LOCK_EX | LOCK_NB);
  if (rc !== 0) {
    const errno = libc.errno();
    closeSync(fd);
    if (errno === EWOULDBLOCK_LINUX || errno === EWOULDBLOCK_DARWIN) {
      return { kind: "held", path, pid: lockHolder(dir) };
    }
    return { kind: "failed", path, reason: `flock failed (errno ${errno})` };
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`);
  return { kind: "locked", fd, path };
}
