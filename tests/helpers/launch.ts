// The one way tests, bench and chaos start a server process: spawn it, keep a bounded tail of its
// output line by line, wait for its machine-readable ready line (`ready {json}`, printed by the
// binary and by the baseline relay), and stop it by its PID (SIGTERM, then SIGKILL).

import type { Subprocess } from "bun";
import type { ReadyInfo } from "../../src/control.ts";

export type { ReadyInfo };

/** How much output to keep: enough to show the last errors, never unbounded. */
const OUTPUT_TAIL = 256 * 1024;
const READY_PREFIX = "ready {";
/** After SIGTERM, this long before SIGKILL. */
const STOP_GRACE_MS = 10_000;

export interface LaunchOptions {
  env?: Record<string, string>;
  /** How long to wait for the ready line. */
  timeoutMs?: number;
  /** Called with every complete output line (stdout and stderr). */
  onLine?: (line: string) => void;
}

export interface Launched {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  ready: ReadyInfo;
  /** Spawn → ready line, measured by the launcher. */
  readyLineMs: number;
  output(): string;
  /** SIGTERM (SIGKILL after the grace time); resolves with the exit code and how long it took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number; killed: boolean }>;
  /** SIGKILL: no shutdown sequence, no flush. */
  kill(): Promise<void>;
}

/** Parses a `ready {json}` line; null for any other line. */
export function parseReadyLine(line: string): ReadyInfo | null {
  if (!line.startsWith(READY_PREFIX)) return null;
  try {
    return JSON.parse(line.slice(READY_PREFIX.length - 1)) as ReadyInfo;
  } catch {
    return null;
  }
}

export async function launch(cmd: string[], o: LaunchOptions = {}): Promise<Launched> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...o.env },
  });
  let out = "";
  let ready: ReadyInfo | null = null;
  let readyAt = 0;
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    const reader = s.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      const text = dec.decode(value, { stream: true });
      out += text;
      if (out.length > OUTPUT_TAIL * 2) out = out.slice(-OUTPUT_TAIL);
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) {
        const r = ready ? null : parseReadyLine(l);
        if (r) (ready = r), (readyAt = performance.now());
        o.onLine?.(l);
      }
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const deadline = t0 + (o.timeoutMs ?? 30_000);
  while (!ready) {
    if (proc.exitCode !== null || performance.now() > deadline) {
      proc.kill("SIGKILL");
      await proc.exited;
      throw new Error(`${cmd[0]} did not become ready (exit ${proc.exitCode}):\n${out.slice(-4000)}`);
    }
    await Bun.sleep(5);
  }
  let stopping: ReturnType<Launched["stop"]> | null = null;
  return {
    proc,
    pid: proc.pid,
    ready,
    readyLineMs: readyAt - t0,
    output: () => out,
    stop(signal: NodeJS.Signals = "SIGTERM") {
      stopping ??= (async () => {
        const s0 = performance.now();
        let killed = false;
        proc.kill(signal);
        const timer = setTimeout(() => {
          killed = true;
          proc.kill("SIGKILL");
        }, STOP_GRACE_MS);
        const code = await proc.exited;
        clearTimeout(timer);
        return { code, ms: performance.now() - s0, killed };
      })();
      return stopping;
    },
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
