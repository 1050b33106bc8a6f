// `drain` (issue 14): a backlog of N stored messages for one offline user, then that user logs in
// and the time until the first and the last message arrives is measured, with the server's CPU over
// the drain. Cases: v0 over raw TCP (no acks), v1 over WebSocket (acks cumulatively as it goes),
// and v1 with bundles (the login flag the SDK sets: a page per WebSocket message, one ack per
// bundle), 50k and 200k messages each. There is no peer to run side by side: the bare relay stores nothing.

import type { Ctx, Scenario } from "../lib/context.ts";
import { collectClientProblems, noteIris, stopServer } from "../lib/context.ts";
import { int, ms, num, table } from "../lib/format.ts";
import { LoadGen } from "../lib/loadgen.ts";
import type { Target } from "../lib/loadgen-protocol.ts";
import { disturbance, pct, runGroups } from "../lib/phases.ts";
import { cpuMicros } from "../lib/procstat.ts";
import { type ServerProc, startIris } from "../lib/server.ts";
import { barChart } from "../lib/svg.ts";

export interface DrainCase {
  proto: "v0" | "v1";
  /** v1 logged in with the bundle flag (docs/PROTOCOL.md, "v1 bundles"). */
  bundles: boolean;
  messages: number;
  fillMs: number;
  stored: number;
  loginMs: number;
  firstMs: number;
  lastMs: number;
  delivered: number;
  complete: boolean;
  outOfOrder: number;
  msgsPerSec: number;
  /** Server CPU (all threads) from login until the last message arrived, µs per message. */
  serverUsPerMsg: number | null;
  serverPct: number | null;
  /** The target for this case (login → last message), if it names one. */
  targetMs: number | null;
}

export interface DrainFigures {
  params: { sizes: number[]; senders: number; window: number; payload: number };
  cases: DrainCase[];
}

/** Targets from issue 14: 50k to a v0 user over TCP < 60 ms; 200k to a v1 user < 250 ms. */
export const DRAIN_TARGET_MS: Record<string, number> = { "v0/50000": 60, "v1/200000": 250 };

const SENDERS = 4;
const WINDOW = 128;

/** Fills one offline user's inbox through Iris (v1 senders, each send acked "stored"). */
async function fill(ctx: Ctx, lg: LoadGen, s: ServerProc, user: string, n: number): Promise<[number, number]> {
  const users = Array.from({ length: SENDERS }, (_, i) => `${user}-sender-${i}`);
  const target: Target = { kind: "ws", url: s.url };
  const o = await lg.open(0, {
    target,
    proto: "v1",
    users,
    concurrency: SENDERS,
    timeoutMs: 20_000,
    payload: ctx.args.payload,
  });
  if (o.failed) throw new Error(`senders could not log in: ${o.errors.join("; ")}`);
  const { groups, cpu } = await runGroups(
    lg,
    () => [{
      name: "fill",
      senders: users.map((_, i) => ({ c: o.firstIndex + i, to: [user] })),
      mode: { kind: "window", window: WINDOW, ackOn: "sent" },
      quota: n / SENDERS,
    }],
    { warmupMs: 0, measureMs: 300_000, drainMs: 30_000, payload: ctx.args.payload },
    s.pid,
  );
  const g = groups.get("fill")!;
  const disturbed = disturbance(`drain fill ${user}`, pct(cpu.otherUs, cpu.wallMs));
  if (disturbed) ctx.problems.push(disturbed);
  if (g.acks.stored !== n) {
    ctx.problems.push(`fill ${user}: ${g.acks.stored} of ${n} acked "stored" (${g.errors} errors)`);
  }
  return [g.acks.stored, Math.round(g.elapsedMs || g.measured.ms)];
}

type Kind = { proto: "v0" | "v1"; bundles: boolean };
const KINDS: Kind[] = [{ proto: "v0", bundles: false }, { proto: "v1", bundles: false }, {
  proto: "v1",
  bundles: true,
}];

async function oneCase(ctx: Ctx, lg: LoadGen, s: ServerProc, kind: Kind, n: number): Promise<DrainCase> {
  const { proto, bundles } = kind;
  const user = `drain-${proto}${bundles ? "b" : ""}-${n}`;
  const [stored, fillMs] = await fill(ctx, lg, s, user, n);
  ctx.log(
    `${user}: stored ${int(stored)} in ${int(fillMs)} ms; logging in over ${proto === "v0" ? "TCP" : "WebSocket"}`,
  );
  await Bun.sleep(200); // let the fill's last commits and acks settle before the clock starts
  const target: Target = proto === "v0"
    ? { kind: "tcp", host: "127.0.0.1", port: s.tcpPort! }
    : { kind: "ws", url: s.url };
  const cpu0 = cpuMicros(s.pid);
  const d = await lg.drain(0, {
    target,
    proto,
    users: [user],
    expect: n,
    timeoutMs: ctx.args.smoke ? 30_000 : 120_000,
    payload: ctx.args.payload,
    bundles,
  });
  const serverUs = cpuMicros(s.pid) - cpu0;
  if (!d.complete) ctx.problems.push(`${user}: only ${d.delivered} of ${n} arrived`);
  if (d.delivered > n) ctx.problems.push(`${user}: ${d.delivered - n} more messages than were stored`);
  if (d.outOfOrder > 0) ctx.problems.push(`${user}: ${d.outOfOrder} deliveries out of order`);
  return {
    proto,
    bundles,
    messages: n,
    fillMs,
    stored,
    loginMs: Math.round(d.loginMs * 10) / 10,
    firstMs: Math.round(d.firstMs * 10) / 10,
    lastMs: Math.round(d.doneMs * 10) / 10,
    delivered: d.delivered,
    complete: d.complete,
    outOfOrder: d.outOfOrder,
    msgsPerSec: Math.round((d.delivered * 1000) / Math.max(0.001, d.doneMs)),
    // The CPU sample also covers the server handling the final ack after the drain call returned.
    serverUsPerMsg: d.delivered > 0 ? Math.round((serverUs / d.delivered) * 100) / 100 : null,
    serverPct: pct(serverUs, d.doneMs),
    targetMs: DRAIN_TARGET_MS[`${proto}/${n}`] ?? null,
  };
}

function summary(cases: DrainCase[]): string[] {
  return table(
    ["case", "stored", "login", "first msg", "last msg", "msgs/s", "server µs/msg", "target", "ok"],
    cases.map((c) => [
      `${c.proto} ${c.proto === "v0" ? "TCP" : c.bundles ? "WS+acks bundled" : "WS+acks"} ${int(c.messages)}`,
      int(c.stored),
      ms(c.loginMs),
      ms(c.firstMs),
      ms(c.lastMs),
      int(c.msgsPerSec),
      c.serverUsPerMsg === null ? "n/a" : num(c.serverUsPerMsg, 2),
      c.targetMs === null ? "-" : `< ${c.targetMs} ms`,
      c.targetMs === null ? "-" : c.complete && c.lastMs < c.targetMs ? "met" : "NOT met",
    ]),
  ).split("\n");
}

export const drain: Scenario<DrainFigures> = async (ctx) => {
  const a = ctx.args;
  const sizes = a.messages ? [a.messages] : a.smoke ? [1000, 4000] : [50_000, 200_000];
  const rounded = sizes.map((n) => Math.floor(n / SENDERS) * SENDERS);
  const params = { sizes: rounded, senders: SENDERS, window: WINDOW, payload: a.payload };
  Object.assign(ctx.params, params);
  const maxInbox = Math.max(100_000, ...rounded);
  const lg = await LoadGen.spawn(1);
  const s = await startIris({
    binary: a.binary ?? undefined,
    shards: a.shards?.[0] ?? null,
    tcp: true,
    args: ["--max-inbox", String(maxInbox)],
  });
  noteIris(ctx, s);
  const cases: DrainCase[] = [];
  try {
    if (s.tcpPort === null) throw new Error("iris did not report a TCP port (--tcp-port 0)");
    for (const n of rounded) for (const kind of KINDS) cases.push(await oneCase(ctx, lg, s, kind, n));
    await collectClientProblems(ctx, lg, "drain");
  } finally {
    await lg.close();
    await stopServer(ctx, s, "iris");
  }
  ctx.notes.push(
    `Fill: ${SENDERS} v1 senders, at most ${WINDOW} unacknowledged sends each, every send acked "stored"; Iris ran with --max-inbox ${maxInbox}.`,
    "Drain: from the recipient's login frame until its first / last message arrived; v1 acks cumulatively as it goes " +
      "(the last ack leaves right after the last delivery), v0 has no acks. Server CPU is all its threads over the drain.",
    "v1 bundled: the login carries the bundle flag (as the SDK does by default), so a backlog page arrives as one " +
      "WebSocket message and is acked once.",
    "No side-by-side peer: the bare relay stores nothing, and the original (Erlang) system is not installed here.",
  );
  return {
    figures: { params, cases },
    charts: [{
      name: "times",
      svg: barChart({
        title: "Backlog drain: login → last message",
        yLabel: "ms",
        categories: cases.map((c) => `${c.proto}${c.bundles ? " bundled" : ""} ${int(c.messages)}`),
        series: [
          { name: "first message", values: cases.map((c) => c.firstMs) },
          { name: "last message", values: cases.map((c) => c.lastMs) },
        ],
      }),
    }],
    summary: summary(cases),
  };
};
