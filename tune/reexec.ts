// Applies the plan's JS heap settings (BUN_JSC_* env vars are read only at process start) by
// replacing this process with itself once, via libc execve through bun:ffi: same pid, no wrapper
// process, signals keep working. Falls back to running on without the setting.

import { dlopen, FFIType, ptr } from "bun:ffi";

const MARK = "IRIS_HEAP_APPLIED";

function cString(s: string): Buffer {
  return Buffer.from(s + "\0", "utf8");
}

/** The argv that starts this same program again (compiled binary or `bun run script`). */
export function selfArgv(): string[] {
  const args = process.argv.slice(2);
  const script = process.argv[1] ?? "";
  // In a compiled binary the script lives in Bun's virtual filesystem and execPath is the binary.
  const compiled = script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  return compiled ? [process.execPath, ...args] : [process.execPath, script, ...args];
}

/**
 * Re-executes with `env` added unless already applied. Returns only when it did not exec (already
 * applied, nothing to apply, or execve failed: then the reason).
 */
export function reexecWithEnv(env: Record<string, string>): string | null {
  if (process.env[MARK] === "1") return null;
  const missing = Object.entries(env).filter(([k, v]) => process.env[k] !== v);
  if (missing.length === 0) return null;
  if (process.platform !== "linux" && process.platform !== "darwin") return "re-exec not supported on this OS";
  let libc;
  try {
    libc = dlopen(process.platform === "linux" ? "libc.so.6" : "libc.dylib", {
      execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
  } catch (e) {
    return `cannot open libc: ${(e as Error).message}`;
  }
  const argv = selfArgv().map(cString);
  const envStrings = Object.entries({ ...process.env, ...env, [MARK]: "1" })
    .filter((e): e is [string, string] => typeof e[1] === "string")
    .map(([k, v]) => cString(`${k}=${v}`));
  // NULL-terminated arrays of char*; the Buffers stay referenced until execve returns (it only
  // returns on failure).
  const argvPtrs = new BigUint64Array(argv.length + 1);
  argv.forEach((b, i) => (argvPtrs[i] = BigInt(ptr(b))));
  const envPtrs = new BigUint64Array(envStrings.length + 1);
  envStrings.forEach((b, i) => (envPtrs[i] = BigInt(ptr(b))));
  const path = cString(argv.length ? selfArgv()[0]! : process.execPath);
  const rc = libc.symbols.execve(ptr(path), ptr(argvPtrs), ptr(envPtrs));
  libc.close();
  return `execve failed (rc ${rc})`;
}
