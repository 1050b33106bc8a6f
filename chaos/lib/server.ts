// Runs the real binary for a chaos scenario (through the one launcher, tests/helpers/launch.ts):
// always with --chaos, on loopback, on a port picked free
// up front (so a SIGKILLed server can come back on the same port and SDK clients just reconnect),
// on a temp data dir that survives restarts and is removed at the end.

import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "../../tests/helpers/free-port.ts";
import { launch, type Launched } from "../../tests/helpers/launch.ts";
import { ChaosApi } from "./chaos-api.ts";

export const DEFAULT_BINARY = process.env.IRIS_BINARY ?? resolve(import.meta.dir, "../../dist/iris");

export interface ServerOptions {
  binary?: string;
  shards?: number;
  /** Extra flags, e.g. ["--slow-consumer-bytes", "65536"]. */
  args?: string[];
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Listen address (default 127.0.0.1; a network namespace's address for a cut-off cluster node). */
  host?: string;
  /** A command to run the binary under (e.g. `ip netns exec NAME`). */
  wrap?: string[];
  /** Where every line the server prints goes, one file per port (the run's evidence). */
  logDir?: string;
  /** Called with the data dir after the final stop, before it is removed (to keep a failed run's store). */
  beforeRemove?: (dataDir: string, port: number) => void;
}

export class ChaosServer {
  readonly port: number;
  readonly dataDir: string;
  readonly url: string;
  readonly http: string;
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  api: ChaosApi = new ChaosApi("http://127.0.0.1:1/chaos");
  /** Process starts after the first (crash-restart). */
  restarts = 0;
  /** Exits nobody asked for: a crash of the whole server. */
  unexpectedExits: string[] = [];
  private launched: Launched | null = null;
  /** Warning and error lines (kept apart from the tail so a chatty log cannot push them out). */
  readonly errors: string[] = [];
  private expectingExit = false;

  private constructor(private readonly o: ServerOptions) {
    this.port = freePort();
    this.dataDir = mkdtempSync(join(tmpdir(), "iris-chaos-"));
    this.url = `ws://${o.host ?? "127.0.0.1"}:${this.port}/ws`;
    this.http = `http://${o.host ?? "127.0.0.1"}:${this.port}`;
  }

  static async start(o: ServerOptions = {}): Promise<ChaosServer> {
    const s = new ChaosServer(o);
    try {
      await s.spawn();
    } catch (e) {
      s.cleanup();
      throw e;
    }
    return s;
  }

  get pid(): number | null {
    return this.proc && this.proc.exitCode === null ? this.proc.pid : null;
  }

  get alive(): boolean {
    return this.pid !== null;
  }

  output(): string {
    return this.launched?.output() ?? "";
  }

  private async spawn(): Promise<void> {
    const args = [
      "--host",
      this.o.host ?? "127.0.0.1",
      "--port",
      String(this.port),
      "--data-dir",
      this.dataDir,
      "--log-level",
      this.o.logLevel ?? "warn",
      "--chaos",
      ...(this.o.shards ? ["--shards", String(this.o.shards)] : []),
      ...(this.o.args ?? []),
    ];
    this.expectingExit = false;
    // The port was free a moment ago; if another process grabbed it, the start fails loudly.
    const l = await launch([...(this.o.wrap ?? []), this.o.binary ?? DEFAULT_BINARY, ...args], {
      timeoutMs: 20_000,
      onLine: (line) => this.line(line),
    });
    const proc = l.proc;
    this.proc = proc;
    this.launched = l;
    void proc.exited.then((code) => {
      if (this.proc === proc && !this.expectingExit) {
        this.unexpectedExits.push(`exit=${code}${proc.signalCode ? ` signal=${proc.signalCode}` : ""}`);
      }
    });
    this.api = new ChaosApi(`http://127.0.0.1:${l.ready.chaosPort}/chaos`);
  }

  private line(l: string): void {
    // Diagnosis: IRIS_CHAOS_SERVER_LOGS=<dir> keeps every line of every server, one file per port.
    const keep = process.env.IRIS_CHAOS_SERVER_LOGS;
    if (keep) appendFileSync(join(keep, `server-${this.port}.log`), l + "\n");
    if (this.o.logDir) {
      try {
        appendFileSync(join(this.o.logDir, `server-${this.port}.log`), l + "\n");
      } catch { /* the evidence was removed or moved already (a server outliving the bounded cleanup) */ }
    }
    if (/^\S+ (warn|error) |fatal|panic|Segmentation fault/i.test(l) && !/invalid port message/.test(l)) {
      // Warnings and errors only, minus the garbage counter's own log, newest 200 kept.
      this.errors.push(l);
      if (this.errors.length > 200) this.errors.shift();
    }
  }

  /** SIGKILL the whole server process: no shutdown sequence, no flush. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    this.expectingExit = true;
    p.kill("SIGKILL");
    await p.exited;
  }

  /** SIGTERM: the shutdown sequence (releases, the dedupe filter's image), SIGKILL after 10 s. */
  async terminate(): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return p?.exitCode ?? null;
    this.expectingExit = true;
    p.kill("SIGTERM");
    const timer = setTimeout(() => p.kill("SIGKILL"), 10_000);
    const code = await p.exited;
    clearTimeout(timer);
    return code;
  }

  /** Starts the binary again on the same port and data dir: after a SIGKILL, or a graceful stop. */
  async restart(how: "kill" | "graceful" = "kill"): Promise<void> {
    if (how === "graceful") await this.terminate();
    else await this.kill();
    this.restarts++;
    // The old listener is gone with the process; retry briefly in case the kernel is slow to free it.
    for (let attempt = 0;; attempt++) {
      try {
        return await this.spawn();
      } catch (e) {
        if (attempt >= 5) throw e;
        await Bun.sleep(200);
      }
    }
  }

  /** Graceful stop (SIGTERM, SIGKILL after 10 s), then the data dir is removed. Returns the exit code. */
  async stop(): Promise<number | null> {
    const code = await this.terminate();
    this.cleanup();
    return code;
  }

  private cleanup(): void {
    try {
      this.o.beforeRemove?.(this.dataDir, this.port);
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}
