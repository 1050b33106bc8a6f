// exactly-once: the checker of issue 13. Sender and recipient applications run as their own
// processes with their state in files (chaos/lib/eo-client.ts); faults are drawn at random from a
// seed: the whole server SIGKILLed and restarted (or stopped with SIGTERM and restarted, which keeps
// the dedupe filter's image for the next start), a recipient process killed and a fresh one
// started on its files, the same for a sender, a connection cut, a shard thread killed. At the end
// every id a sender recorded as acked must have reached a recipient application exactly once, in
// per-sender order, and nothing must arrive that was never sent (chaos/lib/eo-judge.ts).

import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { prng } from "../../src/chaos/garbage.ts";
import { ShardStaller, stallsWanted } from "../faults/stalls.ts";
import { stutter, STUTTER_STALL_MS } from "../faults/stutter.ts";
import { judge, type Judgement, type RecipientFiles, type SenderFiles } from "../lib/eo-judge.ts";
import { num, seconds } from "../lib/options.ts";
import { type Ctx, type Scenario, serverProblems, serverRestarts } from "../lib/scenario.ts";
import type { ChaosServer } from "../lib/server.ts";
import type { Outcome } from "../lib/verdict.ts";

/** How long a shard stutters for one stale-login fault: two stalls, so the second gap reads the stale logins. */
const STALE_STUTTER_MS = 2 * STUTTER_STALL_MS - 100;
/** Before the server's count of refused stale logins is read (owners publish theirs every 250 ms). */
const STALE_COUNT_WAIT_MS = 600;
/** Stale logins the owners refused during the stale faults (diagnosis only; the verdict does not use it). */
let staleRefused = 0;
const staleCount = async (server: ChaosServer): Promise<number> =>
  (await server.api.counters())?.totals.staleLogins ?? 0;
/** The cut comes this long into the stutter's first stall. */
const STALE_CUT_MS = 150;
/** When each client is killed, after the stutter's first gap (drawn per client). */
const STALE_KILL_AFTER_GAP_MS = [100, 250, 400, 550, 700];
const CLIENT = resolve(import.meta.dir, "../lib/eo-client.ts");
const FAULTS = ["server", "stop", "recipient", "sender", "cut", "shard"] as const;
/** With --stalls, one more: a recipient cut and then killed while a shard stutters (chaos/faults/stutter.ts). */
const STALL_FAULTS = [...FAULTS, "stale"] as const;
type FaultKind = (typeof STALL_FAULTS)[number];

/** The client processes, restartable on the same files. `url` may list several, comma-separated
 * (a cluster): each user gets them rotated by its number, so users start spread over the nodes. */
export class Apps {
  private readonly procs = new Map<string, Subprocess>();
  readonly senders: string[];
  readonly recipients: string[];
  /** Clients a cut killed while they were still starting, started again (see start). */
  cutDeaths = 0;
  private stopping = false;
  /** Processes being killed on purpose (a drawn fault is followed by its own start). */
  private readonly killing = new WeakSet<Subprocess>();

  constructor(
    readonly url: string,
    readonly dir: string,
    senders: number,
    recipients: number,
    readonly intervalMs: number,
  ) {
    this.senders = Array.from({ length: senders }, (_, i) => `eos${i}`);
    this.recipients = Array.from({ length: recipients }, (_, i) => `eor${i}`);
  }

  start(user: string): void {
    const sender = user.startsWith("eos");
    const all = this.url.split(",");
    const k = Number(user.slice(3)) % all.length;
    const url = [...all.slice(k), ...all.slice(0, k)].join(",");
    const args = sender
      ? ["sender", url, user, this.dir, this.recipients.join(","), String(this.intervalMs)]
      : ["recipient", url, user, this.dir];
    // stderr to a file of the evidence: a pipe nobody read could fill and block a client for good,
    // and a client that died said why nowhere (a recipient stopped reading in a nats-restart run).
    // Appended: a restarted client keeps its earlier runs' lines.
    const stderr = openSync(join(this.dir, `${user}.err`), "a");
    const p = Bun.spawn([process.execPath, CLIENT, ...args], { stdin: "ignore", stdout: "ignore", stderr });
    closeSync(stderr); // the child has its own copy
    this.procs.set(user, p);
    // A cut (SIGUSR2) that lands while the process is still loading, before it has set its
    // handler, kills it by the signal's default action: a harness artifact, not a fault the
    // scenario drew, and (exitCode null, killed by a signal) it looked "still running" forever
    // (seed 20027: a sender dead from its first second, "1 sends never acked"). As an app's
    // supervisor would, start it again on its files.
    void p.exited.then(() => {
      if (p.signalCode !== "SIGUSR2" || this.stopping || this.killing.has(p) || this.procs.get(user) !== p) return;
      this.cutDeaths++;
      this.start(user);
    });
  }

  startAll(): void {
    for (const u of [...this.recipients, ...this.senders]) this.start(u);
  }

  async kill(user: string): Promise<void> {
    const p = this.procs.get(user);
    if (!p || p.exitCode !== null) return;
    this.killing.add(p);
    p.kill("SIGKILL");
    await p.exited;
  }

  signal(user: string, sig: NodeJS.Signals): void {
    const p = this.procs.get(user);
    if (p && p.exitCode === null) p.kill(sig);
  }

  /** Senders still running (they exit once stopped and fully acked; one killed by a signal is not running). */
  runningSenders(): number {
    return this.senders.filter((u) => {
      const p = this.procs.get(u);
      return p !== undefined && p.exitCode === null && p.signalCode === null;
    }).length;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const p of this.procs.values()) if (p.exitCode === null) p.kill("SIGKILL");
    await Promise.all([...this.procs.values()].map((p) => p.exited));
  }

  /** The last line of a client's file (diagnosis), or undefined. */
  lastLine(user: string, ext: string): string | undefined {
    return this.lines(user, ext).at(-1);
  }

  private lines(user: string, ext: string): string[] {
    try {
      return readFileSync(join(this.dir, `${user}.${ext}`), "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  }

  files(): { senders: SenderFiles[]; recipients: RecipientFiles[] } {
    const senders = this.senders.map((user) => ({
      user,
      next: Number(this.lines(user, "next")[0] ?? 0),
      acks: this.lines(user, "acks"),
    }));
    const recipients = this.recipients.map((user) => {
      const state = JSON.parse(this.lines(user, "state")[0] ?? '{"processed":0}') as { processed: number };
      return { user, log: this.lines(user, "log").slice(0, state.processed) };
    });
    return { senders, recipients };
  }
}

/** One random fault; returns false when it could not be applied now. */
async function inject(kind: FaultKind, server: ChaosServer, apps: Apps, pick: <T>(a: T[]) => T): Promise<boolean> {
  switch (kind) {
    case "server":
      await server.restart();
      return true;
    case "stop":
      await server.restart("graceful");
      return true;
    case "recipient":
    case "sender": {
      const user = pick(kind === "sender" ? apps.senders : apps.recipients);
      await apps.kill(user);
      apps.start(user); // a fresh process with only its files
      return true;
    }
    case "cut":
      apps.signal(pick([...apps.senders, ...apps.recipients]), "SIGUSR2");
      return true;
    case "shard":
      return await server.api.killShard(pick([0, 1]));
    case "stale":
      return await staleLogins(server, apps, pick([0, 1]), pick);
  }
}

/**
 * Every client reconnects (a cut) while shard `k` stutters (long stalls, short gaps), and each
 * process is killed and started again at a drawn moment: one whose new socket opened on `k` in a
 * gap has its login read only a gap later, and the fresh process may log in on the other shard
 * before that (the stale login of router/login-order.ts). Per client about 1 in 8 meet that way.
 */
async function staleLogins(server: ChaosServer, apps: Apps, k: number, pick: <T>(a: T[]) => T): Promise<boolean> {
  const users = [...apps.senders, ...apps.recipients];
  const before = await staleCount(server);
  const stuttering = stutter(server, k, STALE_STUTTER_MS);
  await Bun.sleep(STALE_CUT_MS);
  for (const u of users) apps.signal(u, "SIGUSR2");
  // A cut answered at once reconnects 50 ms later; its new socket on `k` opens in the first gap,
  // one stall (STUTTER_STALL_MS) in, and its login waits for the second. Killed early in between,
  // the fresh process (ten start at once: slow) can log in on the other shard before that.
  const kills = users.map(async (u) => {
    await Bun.sleep(STUTTER_STALL_MS - STALE_CUT_MS + pick(STALE_KILL_AFTER_GAP_MS));
    await apps.kill(u);
    apps.start(u);
  });
  await Promise.all(kills);
  const ok = await stuttering;
  await Bun.sleep(STALE_COUNT_WAIT_MS); // the owners publish their counts every 250 ms
  staleRefused += Math.max(0, (await staleCount(server)) - before); // 0 if the server restarted meanwhile

  return ok;
}

export async function settle(ctx: Ctx, apps: Apps, timeoutMs: number): Promise<void> {
  writeFileSync(join(apps.dir, "stop"), "");
  const end = Date.now() + timeoutMs;
  while (apps.runningSenders() > 0 && Date.now() < end) await Bun.sleep(100);
  // Then until every acked id is in a log, or nothing moves for 5 s.
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < end) {
    const j = judge(apps.files().senders, apps.files().recipients);
    if (j.lost === 0) break;
    if (j.lost !== last) (last = j.lost), (stableSince = Date.now());
    else if (Date.now() - stableSince > 5000) break;
    await Bun.sleep(100);
  }
  await Bun.sleep(300); // late duplicates would show up now
  ctx.log(`settled; senders still running: ${apps.runningSenders()}`);
}

const scenario: Scenario = {
  name: "exactly-once",
  summary: "client processes with state in files; random server, client, connection and shard faults",
  budgetSeconds: (o) => seconds(o, 60, 12) + 90,
  async run(ctx) {
    const o = ctx.opts;
    const seed = num(o, "seed", Date.now() % 100_000, Date.now() % 100_000);
    const rand = prng(seed);
    const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)]!;
    const server = await ctx.server({ shards: 2 });
    // The clients' files: removed after a pass, kept after a failure or with --keep 1 (evidence.ts).
    const dir = ctx.evidence.sub("clients");
    const apps = new Apps(
      server.url,
      dir,
      num(o, "senders", 12, 5),
      num(o, "recipients", 12, 5),
      num(o, "interval-ms", 25, 25),
    );
    ctx.defer(() => apps.stopAll());
    apps.startAll();
    const injected: Record<FaultKind, number> = {
      server: 0,
      stop: 0,
      recipient: 0,
      sender: 0,
      cut: 0,
      shard: 0,
      stale: 0,
    };
    const staller = stallsWanted(o.extra)
      ? new ShardStaller(server, {
        shards: 2,
        everyMs: num(o, "stall-every-ms", 1500, 1500),
        maxMs: num(o, "stall-max-ms", 2000, 2000),
        rand: prng(seed + 1), // its own draw: the faults' draw stays what the seed gives without stalls
      })
      : null;
    const kinds: readonly FaultKind[] = staller ? STALL_FAULTS : FAULTS;
    staller?.start();
    ctx.defer(() => staller?.stop());
    const end = performance.now() + seconds(o, 60, 12) * 1000;
    const every = num(o, "every-ms", 1200, 1200);
    while (performance.now() < end) {
      await Bun.sleep(every * (0.5 + rand()));
      const kind = pick([...kinds]);
      if (await inject(kind, server, apps, pick).catch(() => false)) injected[kind]++;
    }
    await staller?.stop();
    ctx.log(`chaos over (seed ${seed}); settling`);
    await settle(ctx, apps, 60_000);
    const j = judge(apps.files().senders, apps.files().recipients);
    await apps.stopAll();
    const outcome: Outcome = {
      verdict: judgedVerdict(j, apps),
      maxRssMb: ctx.maxRssMb,
      serverRestarts: await serverRestarts(server),
      extra: {
        seed,
        server_kills: injected.server,
        server_stops: injected.stop,
        recipient_restarts: injected.recipient,
        sender_restarts: injected.sender,
        connection_cuts: injected.cut,
        shard_kills: injected.shard,
        ...(apps.cutDeaths > 0 ? { cut_during_start: apps.cutDeaths } : {}),
        ...(staller ? { stale_logins: injected.stale, stale_refused: staleRefused } : {}),
        ...staller?.report(),
        phantom: j.phantom,
        reordered: j.reordered,
      },
      problems: await serverProblems(server),
    };
    if (j.phantom > 0) outcome.problems.push(`${j.phantom} deliveries of ids never sent`);
    if (j.reordered > 0) {
      outcome.problems.push(
        `${j.reordered} deliveries out of per-sender order (e.g. ${j.reorderedExamples.join(", ")})`,
      );
    }
    if (j.lost > 0) outcome.problems.push(`missing e.g. ${j.missingExamples.join(",")}`);
    const stopped = gaveUp(apps);
    if (stopped) outcome.problems.push(`clients that gave up: ${stopped}`);
    if (Object.values(injected).reduce((a, b) => a + b, 0) === 0) outcome.problems.push("no fault was injected");
    return outcome;
  },
};

export default scenario;

/**
 * Clients whose SDK stopped for good while their process ran: told REPLACED although no newer
 * login of theirs existed (each user runs one process; a killed one logs nothing), or a recipient
 * closed. A sender that finished closes itself, so only "replaced" counts for senders.
 */
function gaveUp(apps: Apps): string {
  const last = (u: string) => apps.lastLine(u, "states") ?? "";
  const stuck = [
    ...apps.recipients.filter((u) => last(u).endsWith(" replaced") || last(u).endsWith(" closed")),
    ...apps.senders.filter((u) => last(u).endsWith(" replaced")),
  ];
  return stuck.map((u) => `${u} (${last(u)})`).join(", ");
}

/** The verdict counts of an exactly-once judgement (reconnects are not what these apps count). */
export function judgedVerdict(j: Judgement, apps: Apps): Outcome["verdict"] {
  return {
    sent: j.sent,
    acked: j.acked,
    delivered: j.delivered,
    lost: j.lost,
    duplicated: j.duplicated,
    // Order is each judging scenario's own condition (the cluster's is optional): extra.reordered.
    reordered: 0,
    failed: j.refused,
    reconnects: 0,
    unackedAtEnd: apps.runningSenders(),
  };
}
