// Starts the servers under test as child processes: the built Iris binary (free port, temp data
// dir, --log-level warn) and the bare baseline relay. Waits for the ready line, timing it from
// spawn, keeps their output (anything printed at warn level is worth reporting), and stops them.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const DEFAULT_BINARY = resolve(import.meta.dir, "../../dist/iris");
const RELAY = resolve(import.meta.dir, "../baseline-relay.ts");
const READY = /ready on http:\/\/[^\s]*?:(\d+)/;

export interface ServerProc {
  kind: "iris" | "baseline";
  /** The command line it was started with (binary first). */
  args: string[];
  pid: number;
  port: number;
  tcpPort: number | null;
  url: string;
  http: string;
  dataDir: string | null;
  shards: number | null;
  /** Spawn → ready line on stdout, measured here. */
  readyLineMs: number;
  /** What the server itself printed as startup_ms, if anything. */
  reportedStartupMs: number | null;
  output(): string;
  /** Output lines other than the ready line: at --log-level warn these are warnings and errors. */
  notable(): string[];
  /** Graceful stop (SIGTERM; SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; ms: number; killed: boolean }>;
}

export interface IrisOptions {
  binary?: string;
  shards?: number | null;
  dataDir?: string;
  keepData?: boolean;
  port?: number;
  tcp?: boolean;
  args?: string[];
}

/** Servers started by this process and not yet stopped: killed if the bench itself fails. */
const live = new Set<Subprocess>();

/** SIGKILLs every server this process started that is still running (by its own handle). */
export function killStarted(): void {
  for (const p of live) p.kill("SIGKILL");
  live.clear();
}

function spawnAndWait(
  kind: "iris" | "baseline",
  cmd: string[],
  dataDir: string | null,
  cleanup: () => void,
  shards: number | null,
  timeoutMs = 30_000,
): Promise<ServerProc> {
  const t0 = performance.now();
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(cmd, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  let out = "";
  let readyAt = 0;
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    const reader = s.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      out += dec.decode(value, { stream: true });
      if (!readyAt && READY.test(out)) readyAt = performance.now();
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  return new Promise((resolveP, reject) => {
    const deadline = t0 + timeoutMs;
    const poll = setInterval(() => {
      const m = out.match(READY);
      if (m && readyAt) {
        clearInterval(poll);
        const port = Number(m[1]);
        const tcp = out.match(/ tcp=(\d+)/);
        const reported = out.match(/startup_ms=(\d+)/);
        let stopped: Promise<{ code: number | null; ms: number; killed: boolean }> | null = null;
        resolveP({
          kind,
          args: cmd,
          pid: proc.pid,
          port,
          tcpPort: tcp ? Number(tcp[1]) : null,
          url: `ws://127.0.0.1:${port}/ws`,
          http: `http://127.0.0.1:${port}`,
          dataDir,
          shards,
          readyLineMs: readyAt - t0,
          reportedStartupMs: reported ? Number(reported[1]) : null,
          output: () => out,
          notable: () => out.split("\n").filter((l) => l.trim() !== "" && !READY.test(l)),
          stop() {
            stopped ??= (async () => {
              const s0 = performance.now();
              let killed = false;
              proc.kill("SIGTERM");
              const timer = setTimeout(() => {
                killed = true;
                proc.kill("SIGKILL");
              }, 10_000);
              const code = await proc.exited;
              clearTimeout(timer);
              cleanup();
              return { code, ms: performance.now() - s0, killed };
            })();
            return stopped;
          },
        });
      } else if (proc.exitCode !== null || performance.now() > deadline) {
        clearInterval(poll);
        proc.kill("SIGKILL");
        cleanup();
        reject(new Error(`${kind} did not become ready (exit ${proc.exitCode}):\n${out.slice(-2000)}`));
      }
    }, 2);
  });
}

const helpCache = new Map<string, string>();

/**
 * Flags that switch off Iris's per-user message and per-connection frame rate limits, if this
 * binary has them: the bench measures capacity, and a limiter that drops frames would make the
 * load generator measure the limiter instead.
 */
export function unlimitedArgs(binary = DEFAULT_BINARY): string[] {
  let help = helpCache.get(binary);
  if (help === undefined) {
    try {
      help = Bun.spawnSync([binary, "--help"]).stdout.toString();
    } catch {
      help = "";
    }
    helpCache.set(binary, help);
  }
  return [
    ...(help.includes("--rate-msgs") ? ["--rate-msgs", "0"] : []),
    ...(help.includes("--rate-frames") ? ["--rate-frames", "0"] : []),
  ];
}

export function startIris(o: IrisOptions = {}): Promise<ServerProc> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), "iris-bench-"));
  const binary = o.binary ?? DEFAULT_BINARY;
  const args = [
    binary,
    "--port",
    String(o.port ?? 0),
    "--host",
    "127.0.0.1",
    "--data-dir",
    dataDir,
    "--log-level",
    "warn",
    ...(o.shards ? ["--shards", String(o.shards)] : []),
    ...(o.tcp ? ["--tcp-port", "0"] : []),
    ...unlimitedArgs(binary),
    ...(o.args ?? []),
  ];
  const cleanup = () => {
    if (!o.keepData && !o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return spawnAndWait("iris", args, dataDir, cleanup, o.shards ?? null);
}

export function startBaseline(): Promise<ServerProc> {
  return spawnAndWait("baseline", [process.execPath, RELAY, "--port", "0"], null, () => {}, null);
}

/** A port that was free a moment ago (bind 0, read it, release it). */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

/** `iris --version` of the binary under test. */
export function irisVersion(binary = DEFAULT_BINARY): string {
  try {
    const r = Bun.spawnSync([binary, "--version"]);
    return r.stdout.toString().trim() || "unknown";
  } catch {
    return "unknown (binary not found)";
  }
}
