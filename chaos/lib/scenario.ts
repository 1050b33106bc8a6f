// What a scenario is, and the context it runs in. The context owns everything a scenario starts
// (servers, clients, faults, child processes) and undoes it in reverse order, whether the scenario
// passes, throws, or is cut off by the watchdog: a chaos run never leaves anything running.

import type { Fault } from "../faults/fault.ts";
import { threadRestarts } from "./chaos-api.ts";
import { RunEvidence } from "./evidence.ts";
import { num, type RunOptions } from "./options.ts";
import { RssSampler } from "./rss.ts";
import { ChaosServer, type ServerOptions } from "./server.ts";
import { Traffic, type TrafficOptions } from "./traffic.ts";
import type { Outcome } from "./verdict.ts";

export interface Scenario {
  name: string;
  summary: string;
  /** Upper bound of the whole run in seconds, settle included: the watchdog stops the run there. */
  budgetSeconds(opts: RunOptions): number;
  run(ctx: Ctx): Promise<Outcome>;
}

export class Ctx {
  private readonly cleanups: (() => void | Promise<void>)[] = [];
  private readonly t0 = performance.now();
  /** RSS of the first server started (every scenario has one main server). */
  rss: RssSampler | null = null;
  /** Every server started, kept after cleanup so a failed run can show their error lines. */
  readonly servers: ChaosServer[] = [];
  /** The run's evidence directory: removed after a pass, kept after a failure (evidence.ts). */
  readonly evidence: RunEvidence;

  constructor(readonly opts: RunOptions, readonly name: string) {
    this.evidence = new RunEvidence(name);
  }

  /** Progress goes to stderr (stdout carries only the verdict line) and to the evidence's run.log. */
  log(msg: string): void {
    const s = ((performance.now() - this.t0) / 1000).toFixed(1).padStart(6);
    const line = `[chaos ${this.name} ${s}s] ${msg}`;
    console.error(line);
    this.evidence.append("run.log", `${new Date().toISOString()} ${line}`);
  }

  /** --keep 1 (or EO_KEEP set, exactly-once's older switch): keep the run's evidence even when it passes. */
  get keepAsked(): boolean {
    return num(this.opts, "keep", 0, 0) !== 0 || process.env.EO_KEEP !== undefined;
  }

  defer(fn: () => void | Promise<void>): void {
    this.cleanups.push(fn);
  }

  async server(o: Omit<ServerOptions, "binary"> = {}): Promise<ChaosServer> {
    // --server-args "…" appends flags to any scenario's server (later flags win), for experiments.
    const more = this.opts.extra.get("server-args")?.split(/\s+/).filter(Boolean) ?? [];
    o = { ...o, args: [...(o.args ?? []), ...more] };
    const s = await ChaosServer.start({
      ...o,
      binary: this.opts.binary,
      logDir: this.evidence.sub("servers"),
      beforeRemove: (dir, port) => this.evidence.preserve(`servers/data-${port}`, dir),
    });
    this.servers.push(s);
    this.defer(async () => {
      const code = await s.stop();
      if (code !== 0 && s.unexpectedExits.length === 0) this.log(`server stop exited with ${code}`);
    });
    if (!this.rss) {
      this.rss = new RssSampler(() => s.pid).start();
      const rss = this.rss;
      this.defer(() => rss.stop());
    }
    this.log(`server pid ${s.pid} on ${s.url} (${[...(o.args ?? []), `--shards ${o.shards ?? 1}`].join(" ")})`);
    return s;
  }

  async traffic(o: TrafficOptions): Promise<Traffic> {
    const t = new Traffic(o);
    this.defer(() => t.close());
    await t.connect();
    return t;
  }

  /**
   * The client load most scenarios run: `--users` clients (200; 100 short) each sending every
   * `--interval-ms` (the scenario's default), to random peers and a fraction of offline users.
   */
  liveTraffic(
    server: ChaosServer,
    o: { prefix: string; intervalMs?: number; offlineFraction?: number },
  ): Promise<Traffic> {
    const interval = o.intervalMs ?? 100;
    return this.traffic({
      url: server.url,
      users: num(this.opts, "users", 200, 100),
      intervalMs: num(this.opts, "interval-ms", interval, interval),
      prefix: o.prefix,
      ...(o.offlineFraction !== undefined ? { offlineFraction: o.offlineFraction } : {}),
    });
  }

  fault<F extends Fault>(f: F): F {
    this.defer(() => f.stop());
    return f;
  }

  /** Lets the chaos run for `secs`, logging progress every 5 s. */
  async hold(secs: number, progress: () => string): Promise<void> {
    const end = performance.now() + secs * 1000;
    let next = performance.now() + 5000;
    while (performance.now() < end) {
      await Bun.sleep(Math.min(250, end - performance.now()));
      if (performance.now() >= next) {
        this.log(progress());
        next += 5000;
      }
    }
  }

  get maxRssMb(): number {
    return this.rss?.maxMb ?? 0;
  }

  /** Undo everything, newest first; one failing step does not stop the rest. */
  async cleanup(): Promise<void> {
    while (this.cleanups.length) {
      const fn = this.cleanups.pop()!;
      try {
        await fn();
      } catch (e) {
        this.log(`cleanup step failed: ${(e as Error).message}`);
      }
    }
  }
}

/** Process restarts plus thread restarts of the current incarnation (`before` carries earlier ones). */
export async function serverRestarts(s: ChaosServer, before = 0): Promise<number> {
  return before + s.restarts + threadRestarts(await s.api.counters());
}

/** The universal end-of-run checks on the server: it never died on its own and is ready now. */
export async function serverProblems(s: ChaosServer): Promise<string[]> {
  const p: string[] = [];
  if (s.unexpectedExits.length) p.push(`server process died on its own (${s.unexpectedExits.join(", ")})`);
  try {
    const r = await fetch(`${s.http}/readyz`, { signal: AbortSignal.timeout(3000) });
    if (r.status !== 200) p.push(`server not ready at the end (/readyz ${r.status})`);
  } catch {
    p.push("server unreachable at the end");
  }
  return p;
}
