// The target table of issue 14, filled from the figures of one `npm run bench -- all` run: every
// row next to its target, and "not measured" (with why) where this run has no figure for it.
// Pure: figures in, text lines out.

import type { DrainFigures } from "../scenarios/drain.ts";
import type { FloodFigures } from "../scenarios/offline-flood.ts";
import { type ConnectionsFigures, type PerConnSpread, perConnSpread } from "../scenarios/connections.ts";
import type { Login, RatioField, ThroughputFigures } from "../scenarios/throughput.ts";
import { num, table } from "./format.ts";

export interface RunFigures {
  drain?: DrainFigures;
  throughput?: ThroughputFigures;
  "offline-flood"?: FloodFigures;
  connections?: ConnectionsFigures;
}

type Row = [figure: string, measured: string, target: string, verdict: string];
type Cell = [measured: string, verdict: string];

const NOT = (why: string): Cell => [`not measured: ${why}`, "-"];
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
const x = (v: number) => `${num(v, 2)}x relay`;

function drainRow(f: DrainFigures | undefined, proto: "v0" | "v1", n: number, targetMs: number): [string, string] {
  if (!f) return NOT("drain did not run");
  // v1: the bundled case when there is one (the SDK's default login), else the plain one.
  const all = f.cases.filter((k) => k.proto === proto && k.messages === n);
  const c = all.find((k) => k.bundles) ?? all[0];
  if (!c) return NOT(`no ${proto} case of ${n} messages in this run`);
  if (!c.complete) return [`${c.delivered} of ${n} arrived (incomplete)`, verdict(false)];
  return [
    `${num(c.lastMs, 1)} ms (${num(c.serverUsPerMsg ?? NaN, 2)} µs server CPU/msg)`,
    verdict(c.lastMs < targetMs),
  ];
}

/** Why this run has no throughput ratio at all, or null when it has the relay to compare with. */
function throughputWhy(f: ThroughputFigures | undefined): string | null {
  return !f
    ? "throughput did not run"
    : f.params.proto !== "v1"
    ? `ran with --proto ${f.params.proto}`
    : f.params.conns !== 1000
    ? `ran with ${f.params.conns} connections, not 1,000`
    : !f.baseline
    ? "no relay in the same run (--no-baseline)"
    : null;
}

/** The three throughput cells (throughput, CPU per message, paced p99) of one login kind. */
function throughputRows(f: ThroughputFigures | undefined, login: Login): [Cell, Cell, Cell] {
  const ofLogin = (k: { bundles?: boolean }) => (k.bundles ?? false) === (login === "bundled");
  const r = f?.ratios.find(ofLogin);
  // With --frame-floor: the same ratio to the relay answering every send, the floor of the frames
  // a plain v1 message moves (said beside the verdict, which stays against the plain relay).
  const floor = f?.floorRatios?.find(ofLogin);
  const why = throughputWhy(f) ?? (r ? null : `no ${login} v1 run (add --both-logins)`);
  if (why || !r) return [NOT(why ?? "no ratio"), NOT(why ?? "no ratio"), NOT(why ?? "no ratio")];
  // With --rounds the ratio is the median of the rounds: the cell says so, with their range.
  const of = (k: RatioField): string => {
    const span = r.range?.[k];
    return r.rounds && r.rounds > 1 && span
      ? ` (median of ${r.rounds} rounds, ${num(span[0], 2)}-${num(span[1], 2)})`
      : "";
  };
  const cell = (k: RatioField, ok: (v: number) => boolean): Cell => {
    const v = r[k];
    const w = floor?.[k];
    const beside = typeof w === "number" ? `; ${num(w, 2)}x the relay answering sends` : "";
    return v === null ? NOT("no figure") : [x(v) + of(k) + beside, verdict(ok(v))];
  };
  return [
    cell("saturationThroughput", (v) => v >= 0.9),
    cell("cpuPerMessage", (v) => v <= 1.2),
    cell("pacedP99", (v) => v <= 1.5),
  ];
}

/** The throughput rows, plain v1 then bundled v1 (the SDK's default login), each with its own verdict. */
function throughputTable(f: ThroughputFigures | undefined): Row[] {
  const rows: Row[] = [];
  const name = { plain: "plain v1", bundled: "bundled v1 (SDK default)" } as const;
  const cells = { plain: throughputRows(f, "plain"), bundled: throughputRows(f, "bundled") };
  THROUGHPUT_FIGURES.forEach(([figure, target], i) => {
    for (const login of ["plain", "bundled"] as const) {
      rows.push([`${figure}, ${name[login]}`, cells[login][i]![0], target, cells[login][i]![1]]);
    }
  });
  return rows;
}

const THROUGHPUT_FIGURES: [figure: string, target: string][] = [
  ["v1 saturation throughput, 1,000 conns", ">= 0.9x relay"],
  ["v1 server CPU per message at saturation", "<= 1.2x relay"],
  ["v1 p99 paced at 50% of Iris's saturation", "<= 1.5x relay"],
];

function floodRow(f: FloodFigures | undefined, login: Login): Cell {
  if (!f) return NOT("offline-flood did not run");
  const r = f.runs.find((k) => k.login === login);
  if (!r) return NOT(`no ${login} v1 flood in this run (add --both-logins)`);
  if (r.params.recipients !== 10_000) return NOT(`ran into ${r.params.recipients} inboxes, not 10,000`);
  const p99 = r.pairDuringFlood.latency.p99Ms;
  // The relay that stores nothing, same flood: the ceiling this machine and load generator allow.
  const y = (f.relay ?? []).find((k) => k.login === login);
  const ceiling = y
    ? ` (relay storing nothing: ${num(y.flood.storedPerSec, 0)} rows/s, pair p99 ${
      num(y.pairDuringFlood.latency.p99Ms, 2)
    } ms)`
    : "";
  return [
    `${num(r.flood.storedPerSec, 0)} rows/s, pair p99 ${num(p99, 2)} ms${ceiling}`,
    verdict(r.flood.storedPerSec >= 150_000 && p99 < 5),
  ];
}

function connRow(f: ConnectionsFigures | undefined): [string, string] {
  if (!f) return NOT("connections did not run");
  const iris = perConnSpread(f, 10_000, "target");
  if (iris === null) return NOT("no 10,000-connection level in this run");
  const relay = perConnSpread(f, 10_000, "baseline");
  const kb = (s: PerConnSpread) =>
    s.n > 1 ? `${num(s.median, 2)} KB (${num(s.lo, 2)}–${num(s.hi, 2)}, median of ${s.n})` : `${num(s.median, 2)} KB`;
  return [`${kb(iris)}${relay ? `; relay ${kb(relay)}` : ""}`, verdict(iris.median <= 2.5)];
}

/** The table's lines. */
export function issueTargetLines(f: RunFigures): string[] {
  const judged = (figure: string, [measured, v]: Cell): Row => [figure, measured, TARGETS[figure]!, v];
  const rows: Row[] = [
    judged("50k stored msgs to one v0 user over TCP, login -> last byte", drainRow(f.drain, "v0", 50_000, 60)),
    judged("200k stored msgs to one v1 user, login -> all delivered and acked", drainRow(f.drain, "v1", 200_000, 250)),
    ...throughputTable(f.throughput),
    judged(FLOOD + ", plain v1", floodRow(f["offline-flood"], "plain")),
    judged(FLOOD + ", bundled v1 (SDK default)", floodRow(f["offline-flood"], "bundled")),
    judged("idle logged-in connection at 10k", connRow(f.connections)),
  ];
  return [
    "Issue 14 targets (this run):",
    ...table(["figure", "measured", "target", "verdict"], rows.map((r) => [r[0], r[1], r[2], r[3]])).split("\n"),
  ];
}

const FLOOD = "offline flood into 10,000 inboxes, sustained";

const TARGETS: Record<string, string> = {
  "50k stored msgs to one v0 user over TCP, login -> last byte": "< 60 ms",
  "200k stored msgs to one v1 user, login -> all delivered and acked": "< 250 ms",
  [FLOOD + ", plain v1"]: ">= 150k rows/s, pair p99 < 5 ms",
  [FLOOD + ", bundled v1 (SDK default)"]: ">= 150k rows/s, pair p99 < 5 ms",
  "idle logged-in connection at 10k": "<= 2.5 KB",
};
