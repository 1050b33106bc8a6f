// Parent side of the load generator: spawns N worker processes (Bun IPC), sends them commands and
// awaits replies with a deadline. Every wait is bounded; close() ends the workers it started.

import type { Subprocess } from "bun";
import type {
  Cmd,
  DrainCmd,
  DrainReply,
  OpenCmd,
  OpenReply,
  Reply,
  RunCmd,
  RunReply,
  StatsReply,
} from "./loadgen-protocol.ts";

const WORKER = new URL("./loadgen-worker.ts", import.meta.url).pathname;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

class WorkerHandle {
  pid = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private helloResolve!: () => void;
  readonly hello = new Promise<void>((r) => (this.helloResolve = r));
  readonly proc: Subprocess;

  constructor(index: number, maxLifeMs: number) {
    this.proc = Bun.spawn([process.execPath, WORKER], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, BENCH_WORKER_MAX_MS: String(maxLifeMs) },
      serialization: "json",
      ipc: (m: unknown) => this.onMessage(m),
      onExit: (_p, code) => {
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`load-generator worker ${index} exited (code ${code}) during request ${id}`));
        }
        this.pending.clear();
      },
    });
  }

  private onMessage(m: unknown): void {
    const hello = m as { hello?: boolean; pid?: number };
    if (hello.hello) {
      this.pid = hello.pid ?? this.proc.pid;
      this.helloResolve();
      return;
    }
    const r = m as Reply;
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.data);
    else p.reject(new Error(`load-generator worker: ${r.error}`));
  }

  call<T>(cmd: Cmd, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load-generator worker: no reply to ${cmd.t} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ ...cmd, id });
    });
  }
}

export class LoadGen {
  private constructor(private readonly workers: WorkerHandle[]) {}

  /** Starts `n` worker processes; each exits by itself after `maxLifeMs`. */
  static async spawn(n: number, maxLifeMs = 15 * 60_000): Promise<LoadGen> {
    const ws = Array.from({ length: n }, (_, i) => new WorkerHandle(i, maxLifeMs));
    const lg = new LoadGen(ws);
    const timeout = new Promise<never>((_, rej) =>
      setTimeout(() => rej(new Error("workers did not start in 15 s")), 15_000)
    );
    try {
      await Promise.race([Promise.all(ws.map((w) => w.hello)), timeout]);
    } catch (e) {
      await lg.close();
      throw e;
    }
    return lg;
  }

  get size(): number {
    return this.workers.length;
  }

  pids(): number[] {
    return this.workers.map((w) => w.pid);
  }

  open(w: number, cmd: Omit<OpenCmd, "t">, timeoutMs = 120_000): Promise<OpenReply> {
    return this.workers[w]!.call<OpenReply>({ t: "open", ...cmd }, timeoutMs);
  }

  run(w: number, cmd: Omit<RunCmd, "t">): Promise<RunReply> {
    return this.workers[w]!.call<RunReply>(
      { t: "run", ...cmd },
      cmd.startAt - Date.now() + cmd.warmupMs + cmd.measureMs + cmd.drainMs + (cmd.settleMs ?? 0) + 30_000,
    );
  }

  drain(w: number, cmd: Omit<DrainCmd, "t">): Promise<DrainReply> {
    return this.workers[w]!.call<DrainReply>({ t: "drain", ...cmd }, cmd.timeoutMs + 30_000);
  }

  stats(w: number): Promise<StatsReply> {
    return this.workers[w]!.call<StatsReply>({ t: "stats" }, 10_000);
  }

  closeConns(w: number): Promise<unknown> {
    return this.workers[w]!.call({ t: "close" }, 20_000);
  }

  /** Asks every worker to exit, then kills (by pid) any that did not within 3 s. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
      w.call({ t: "exit" }, 2000).catch(() => {});
      const timer = setTimeout(() => w.proc.kill("SIGKILL"), 3000);
      await w.proc.exited;
      clearTimeout(timer);
    }));
  }
}

/** Splits `items` into `n` contiguous chunks of near-equal size (pairs stay together if even). */
export function chunk<T>(items: T[], n: number, unit = 1): T[][] {
  const units = Math.ceil(items.length / unit);
  const out: T[][] = [];
  let u = 0;
  for (let k = 0; k < n; k++) {
    const take = Math.floor(units / n) + (k < units % n ? 1 : 0);
    out.push(items.slice(u * unit, (u + take) * unit));
    u += take;
  }
  return out;
}
