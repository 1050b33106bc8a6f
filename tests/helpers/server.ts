// Starts the real built binary (dist/iris) for a test: free port, temp data dir, waits for the
// ready line (tests/helpers/launch.ts), and stops it (SIGTERM, then SIGKILL if it hangs).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { launch } from "./launch.ts";

export const BINARY = resolve(import.meta.dir, "../../dist/iris");

export interface RunningServer {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  tcpPort?: number;
  url: string;
  http: string;
  dataDir: string;
  /** The chaos endpoint's port (started with --chaos), else null. */
  chaosPort: number | null;
  output(): string;
  /** Graceful stop; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
  kill(): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  dataDir?: string;
  keepData?: boolean;
  shards?: number;
  /** A command to run the binary under, e.g. ["prlimit", "--nofile=256:256", "--"]. */
  wrap?: string[];
}

export async function startServer(o: StartOptions = {}): Promise<RunningServer> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), "iris-test-"));
  const args = [
    "--port",
    "0",
    "--data-dir",
    dataDir,
    "--log-level",
    "warn",
    ...(o.shards ? ["--shards", String(o.shards)] : []),
    ...(o.args ?? []),
  ];
  const cleanup = () => {
    if (!o.keepData && !o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  let l;
  try {
    l = await launch([...(o.wrap ?? []), BINARY, ...args], { env: o.env, timeoutMs: 15_000 });
  } catch (e) {
    cleanup();
    throw e;
  }
  const { port, tcpPort } = l.ready;
  let stopped = false;
  return {
    proc: l.proc,
    port,
    ...(tcpPort ? { tcpPort } : {}),
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    dataDir,
    chaosPort: l.ready.chaosPort,
    output: l.output,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (stopped) return l.proc.exitCode ?? 0;
      stopped = true;
      const { code } = await l.stop(signal);
      cleanup();
      return code ?? 0;
    },
    async kill() {
      stopped = true;
      await l.kill();
      cleanup();
    },
  };
}

/** Polls until `cond` is true or the time runs out (then throws with `what`). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}
