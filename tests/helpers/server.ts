// Starts the real built binary (dist/iris) for a test: free port, temp data dir, waits for the
// ready line, and stops it (SIGTERM, then SIGKILL if it hangs).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const BINARY = resolve(import.meta.dir, "../../dist/iris");

export interface RunningServer {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  tcpPort?: number;
  url: string;
  http: string;
  dataDir: string;
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
  const proc = Bun.spawn([...(o.wrap ?? []), BINARY, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...o.env },
  });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    const reader = s.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      out += dec.decode(value);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const deadline = Date.now() + 15_000;
  let m: RegExpMatchArray | null = null;
  while (!(m = out.match(/ready on http:\/\/[^:]+:(\d+)/))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`server did not start (exit ${proc.exitCode}):\n${out}`);
    }
    await Bun.sleep(10);
  }
  const port = Number(m[1]);
  const tcp = out.match(/tcp=(\d+)/);
  let stopped = false;
  const cleanup = () => {
    if (!o.keepData && !o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    proc,
    port,
    ...(tcp ? { tcpPort: Number(tcp[1]) } : {}),
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    dataDir,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (stopped) return proc.exitCode ?? 0;
      stopped = true;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const code = await proc.exited;
      clearTimeout(timer);
      cleanup();
      return code;
    },
    async kill() {
      stopped = true;
      proc.kill("SIGKILL");
      await proc.exited;
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
