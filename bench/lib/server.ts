// Starts the servers under test as child processes: the built Iris binary (free port, temp data
// dir, --log-level warn) and the bare baseline relay, through the one launcher
// (tests/helpers/launch.ts). Waits for the ready line, timing it from spawn, keeps their output (anything printed at warn level is worth reporting), and stops them.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "../../tests/helpers/free-port.ts";
import { launch, type Launched, parseReadyLine } from "../../tests/helpers/launch.ts";

export { freePort };

export const DEFAULT_BINARY = resolve(import.meta.dir, "../../dist/iris");
const RELAY = resolve(import.meta.dir, "../baseline-relay.ts");
/** The human ready line (printed beside the machine one): not worth reporting as notable. */
const READY = /ready on http:\/\//;

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
  /** The connection cap the server planned (from its ready line; null for the relay). */
  maxConns: number | null;
  output(): string;
  /** Output lines other than the ready line: at --log-level warn these are warnings and errors. */
  notable(): string[];
  /** Graceful stop (SIGTERM; SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; ms: number; killed: boolean }>;
  /** SIGKILL by pid (a crash); stop() afterwards only cleans up. */
  kill(): Promise<void>;
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

async function spawnAndWait(
  kind: "iris" | "baseline",
  cmd: string[],
  dataDir: string | null,
  cleanup: () => void,
  shards: number | null,
  timeoutMs = 30_000,
): Promise<ServerProc> {
  let l: Launched;
  try {
    l = await launch(cmd, { timeoutMs });
  } catch (e) {
    cleanup();
    throw new Error(`${kind}: ${(e as Error).message}`);
  }
  live.add(l.proc);
  void l.proc.exited.then(() => live.delete(l.proc));
  const { port, tcpPort, startupMs } = l.ready;
  let stopped: ReturnType<ServerProc["stop"]> | null = null;
  return {
    kind,
    args: cmd,
    pid: l.pid,
    port,
    tcpPort: tcpPort ?? null,
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    dataDir,
    shards,
    readyLineMs: l.readyLineMs,
    reportedStartupMs: kind === "iris" ? startupMs : null,
    maxConns: kind === "iris" ? l.ready.maxConns ?? null : null,
    output: l.output,
    notable: () => l.output().split("\n").filter((x) => x.trim() !== "" && !READY.test(x) && !parseReadyLine(x)),
    stop() {
      stopped ??= l.stop().then((r) => (cleanup(), r));
      return stopped;
    },
    kill: () => l.kill(),
  };
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

/** Every Iris this process starts gets --auto-tune (the bench's --auto-tune flag). */
let irisAutoTune = false;
export function startIrisAutoTuned(on: boolean): void {
  irisAutoTune = on;
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
    process.env.IRIS_BENCH_LOG_LEVEL ?? "warn", // info: a diagnosis run
    ...(o.shards ? ["--shards", String(o.shards)] : []),
    ...(o.tcp ? ["--tcp-port", "0"] : []),
    ...unlimitedArgs(binary),
    ...(irisAutoTune ? ["--auto-tune"] : []),
    ...(o.args ?? []),
  ];
  const cleanup = () => {
    if (!o.keepData && !o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return spawnAndWait("iris", args, dataDir, cleanup, o.shards ?? null);
}

/** `args`: the relay's own flags (e.g. `--ack-offline`, the offline flood's yardstick). */
export function startBaseline(args: string[] = []): Promise<ServerProc> {
  return spawnAndWait("baseline", [process.execPath, RELAY, "--port", "0", ...args], null, () => {}, null);
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
