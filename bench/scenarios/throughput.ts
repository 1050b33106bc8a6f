// `throughput`: pairs of users messaging through Iris (once per --shards value), then the same
// load through the bare baseline relay in the same run; Iris is reported as a ratio of it.

import { latencyBars, rateLines } from "../lib/charts.ts";
import type { Ctx, Scenario } from "../lib/context.ts";
import { median, num, ratio } from "../lib/format.ts";
import { LoadGen } from "../lib/loadgen.ts";
import { externalTarget, isExternal, startTarget } from "../lib/targets.ts";
import { measureTarget, type PairsParams, pairsParams, type TargetFigures, targetSummary } from "./pairs-load.ts";

export interface Ratios {
  label: string;
  /** The Iris side logged in with bundles (the SDK's default v1 login). */
  bundles: boolean;
  /** Iris msgs/s at saturation ÷ baseline msgs/s at saturation. */
  saturationThroughput: number | null;
  /** Server CPU per message, Iris ÷ baseline (at saturation). */
  cpuPerMessage: number | null;
  /** Latency at the same paced rate, Iris ÷ baseline. */
  pacedP50: number | null;
  pacedP99: number | null;
  saturationP99: number | null;
  /** Rounds these ratios are the medians of (absent: one round). */
  rounds?: number;
  /** With rounds > 1: each ratio's lowest and highest round. */
  range?: Partial<Record<RatioField, [number, number]>>;
}

/** The ratio fields of Ratios. */
export const RATIO_FIELDS = ["saturationThroughput", "cpuPerMessage", "pacedP50", "pacedP99", "saturationP99"] as const;
export type RatioField = (typeof RATIO_FIELDS)[number];

/** One round: every Iris run, then the relay paced at their rates. */
export interface ThroughputRound {
  targets: TargetFigures[];
  baseline: TargetFigures | null;
  ratios: Ratios[];
  /** With --frame-floor: the relay answering each send SENT (baseline-relay.ts --ack-sends), and Iris's ratios to it. */
  floor?: TargetFigures | null;
  floorRatios?: Ratios[];
}

export interface ThroughputFigures {
  params: PairsParams & { proto: string; workers: number; bundles?: boolean; logins?: Login[]; rounds?: number };
  /** The last round's runs (its charts). */
  targets: TargetFigures[];
  baseline: TargetFigures | null;
  /** One round: its ratios; more: the medians over the rounds, per Iris run (same order every round). */
  ratios: Ratios[];
  /** Every round, in order (absent in results written before --rounds). */
  rounds?: ThroughputRound[];
  /** With --frame-floor: Iris's ratios to the relay answering sends, as `ratios` are to the plain relay. */
  floorRatios?: Ratios[];
}

/**
 * The median of each ratio over the rounds, per Iris run (rounds list their runs in the same
 * order), with each ratio's range; a ratio missing in a round is left out of its median. Pure.
 */
export function medianRatios(rounds: Ratios[][]): Ratios[] {
  if (rounds.length <= 1) return rounds[0] ?? [];
  return rounds[0]!.map((first, i) => {
    const out: Ratios = { ...first, rounds: rounds.length, range: {} };
    for (const k of RATIO_FIELDS) {
      const vs = rounds.map((r) => r[i]?.[k]).filter((v): v is number => typeof v === "number");
      out[k] = vs.length ? Math.round(median(vs) * 1000) / 1000 : null;
      if (vs.length) out.range![k] = [Math.min(...vs), Math.max(...vs)];
    }
    return out;
  });
}

/** How Iris's v1 load connections log in: plain, or with the bundle flag as the SDK does. */
export type Login = "plain" | "bundled";

/** The logins to measure Iris with: both under --both-logins (v1, Iris started here), else the one asked. */
export function loginsOf(a: { proto: string; bundles: boolean; bothLogins: boolean }, external: boolean): Login[] {
  if (a.bothLogins && a.proto === "v1" && !external) return ["plain", "bundled"];
  return [a.bundles ? "bundled" : "plain"];
}

/** The baseline's paced phase at `t`'s paced rate (the relay is paced once per distinct Iris rate). */
function pacedAtSameRate(t: TargetFigures, b: TargetFigures) {
  return [b.paced, ...b.pacedMore].find((r) => r.targetRate === t.paced.targetRate) ?? b.paced;
}

export function ratiosOf(t: TargetFigures, b: TargetFigures, yardstick = "baseline"): Ratios {
  const bp = pacedAtSameRate(t, b);
  return {
    label: `${t.label} / ${yardstick}`,
    bundles: t.bundles,
    saturationThroughput: ratio(t.saturation.msgsPerSec, b.saturation.msgsPerSec),
    cpuPerMessage: ratio(t.saturation.cpu.serverUsPerMsg ?? NaN, b.saturation.cpu.serverUsPerMsg ?? 0),
    pacedP50: ratio(t.paced.latency.p50Ms, bp.latency.p50Ms),
    pacedP99: ratio(t.paced.latency.p99Ms, bp.latency.p99Ms),
    saturationP99: ratio(t.saturation.latency.p99Ms, b.saturation.latency.p99Ms),
  };
}

export function ratioLines(r: Ratios): string[] {
  const f = (k: RatioField) => {
    const v = r[k];
    if (v === null) return "n/a";
    const span = r.range?.[k];
    return span ? `${num(v, 2)}x (${num(span[0], 2)}-${num(span[1], 2)})` : `${num(v, 2)}x`;
  };
  const label = r.rounds && r.rounds > 1 ? `${r.label}, median of ${r.rounds} rounds (range)` : r.label;
  return [
    `${label}: throughput ${f("saturationThroughput")}, server CPU/msg ${f("cpuPerMessage")}, ` +
    `p99 at saturation ${f("saturationP99")}, paced p50 ${f("pacedP50")}, paced p99 ${f("pacedP99")}`,
  ];
}

/** One Iris server (fresh for each login kind, so neither inherits the other's warm state). */
async function measureIris(
  ctx: Ctx,
  lg: LoadGen,
  p: PairsParams,
  shards: number | null,
  login: Login,
): Promise<TargetFigures> {
  const t = await startTarget(ctx, "iris", shards);
  try {
    const run = { ...t, label: login === "bundled" ? `${t.label} bundled` : t.label };
    return await measureTarget(ctx, lg, run, p, { pacedRates: [], bundles: login === "bundled" });
  } finally {
    await t.stop();
  }
}

/** One round: each Iris run asked for, then the relay paced at their rates (unless --no-baseline). */
async function oneRound(ctx: Ctx, lg: LoadGen, p: PairsParams, logins: Login[]): Promise<ThroughputRound> {
  const targets: TargetFigures[] = [];
  let baseline: TargetFigures | null = null;
  if (isExternal(ctx)) {
    targets.push(await measureTarget(ctx, lg, externalTarget(ctx), p, { pacedRates: [], bundles: ctx.args.bundles }));
  } else {
    for (const shards of ctx.args.shards ?? [null]) {
      for (const login of logins) targets.push(await measureIris(ctx, lg, p, shards, login));
    }
  }
  // Paced once at each Iris run's paced rate: each latency ratio then compares equal offered load.
  const pacedRates = [...new Set(targets.map((t) => t.paced.targetRate).filter((r) => r !== null))];
  const relay = async (args: string[]) => {
    const b = await startTarget(ctx, "baseline", null, args);
    try {
      return await measureTarget(ctx, lg, b, p, { pacedRates, bundles: false });
    } finally {
      await b.stop();
    }
  };
  if (ctx.args.baseline) baseline = await relay([]);
  const round: ThroughputRound = {
    targets,
    baseline,
    ratios: baseline ? targets.map((t) => ratiosOf(t, baseline!)) : [],
  };
  if (ctx.args.frameFloor) {
    const floor = await relay(["--ack-sends"]);
    round.floor = floor;
    round.floorRatios = targets.map((t) => ratiosOf(t, floor, "relay answering sends"));
  }
  return round;
}

export const throughput: Scenario<ThroughputFigures> = async (ctx) => {
  const p = pairsParams(ctx);
  const workers = ctx.args.workers ?? 2;
  const logins = loginsOf(ctx.args, isExternal(ctx));
  const roundsWanted = ctx.args.rounds;
  Object.assign(ctx.params, p, {
    proto: ctx.args.proto,
    bundles: ctx.args.bundles,
    logins,
    workers,
    shards: ctx.args.shards ?? "default",
    rounds: roundsWanted,
  });
  const lg = await LoadGen.spawn(workers);
  const rounds: ThroughputRound[] = [];
  try {
    for (let r = 1; r <= roundsWanted; r++) {
      if (roundsWanted > 1) ctx.log(`round ${r} of ${roundsWanted}`);
      rounds.push(await oneRound(ctx, lg, p, logins));
    }
  } finally {
    await lg.close();
  }
  const { targets, baseline } = rounds[rounds.length - 1]!;
  const ratios = medianRatios(rounds.map((r) => r.ratios));
  const floorRatios = ctx.args.frameFloor ? medianRatios(rounds.map((r) => r.floorRatios ?? [])) : undefined;
  ctx.notes.push(
    `Saturation = closed loop: every connection keeps at most ${p.window} messages in flight to its partner ` +
      `(a message leaves the window when its partner receives it). Latency at saturation is mostly queueing ` +
      `(Little's law: in-flight ÷ throughput), so compare it only between targets.`,
    "Paced = open loop at a fixed total rate; the baseline is paced once at each Iris run's paced rate (plain and bundled logins) so every latency ratio compares equal load.",
    "Latency = send → delivery, measured in the load-generator process that holds both ends of a pair.",
    "Ratios (Iris ÷ baseline relay) come from the same run on the same machine; msgs/s, µs and ms are absolute.",
    ...(floorRatios
      ? [
        '--frame-floor: the relay was also run with --ack-sends, answering each send SENT "delivered" at once: ' +
        "the four frames a plain v1 message moves through Iris (SEND, SENT, DELIVER, ACK) against the plain relay's " +
        'three, and no other work. Iris\'s ratios to it ("/ relay answering sends") say how much of a ratio is ' +
        "the protocol's extra frame; the issue-14 ratios stay against the plain relay.",
      ]
      : []),
    ...(rounds.length > 1
      ? [
        `${rounds.length} rounds, each Iris (fresh servers) then the relay; a ratio's verdict uses its median over ` +
        "the rounds (the range in brackets), since one round's ratios at the line change verdict from run to run.",
      ]
      : []),
  );
  const floor = rounds[rounds.length - 1]!.floor ?? null;
  const all = [...targets, ...(baseline ? [baseline] : []), ...(floor ? [floor] : [])];
  return {
    figures: {
      params: { ...p, proto: ctx.args.proto, bundles: ctx.args.bundles, logins, workers, rounds: rounds.length },
      targets,
      baseline,
      ratios,
      rounds,
      ...(floorRatios ? { floorRatios } : {}),
    },
    charts: [
      {
        name: "latency",
        svg: latencyBars(
          `Latency (${ctx.args.proto}, ${p.conns} conns)`,
          all.flatMap((t) => [
            { name: `${t.label} sat`, latency: t.saturation.latency },
            { name: `${t.label} paced`, latency: t.paced.latency },
          ]),
        ),
      },
      {
        name: "throughput",
        svg: rateLines(
          "Delivered messages per second",
          all.flatMap((t) => [
            { name: `${t.label} sat`, perSecond: t.saturation.perSecond },
            { name: `${t.label} paced`, perSecond: t.paced.perSecond },
          ]),
        ),
      },
    ],
    summary: rounds.length > 1
      ? [
        ...rounds.flatMap((r, i) => [
          `round ${i + 1}:`,
          ...[...r.targets, ...(r.baseline ? [r.baseline] : []), ...(r.floor ? [r.floor] : [])].flatMap(targetSummary),
          ...r.ratios.flatMap(ratioLines),
          ...(r.floorRatios ?? []).flatMap(ratioLines),
        ]),
        ...ratios.flatMap(ratioLines),
        ...(floorRatios ?? []).flatMap(ratioLines),
      ]
      : [...all.flatMap(targetSummary), ...ratios.flatMap(ratioLines), ...(floorRatios ?? []).flatMap(ratioLines)],
  };
};
