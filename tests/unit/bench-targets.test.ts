// The issue-14 target table printed by `npm run bench -- all`: each row judged against its target,
// and rows without a figure say why instead of showing a number.

import { expect, test } from "bun:test";
import { issueTargetLines, type RunFigures } from "../../bench/lib/issue-targets.ts";
import { parseArgs } from "../../bench/lib/args.ts";
import { loginsOf, medianRatios, ratioLines, ratiosOf } from "../../bench/scenarios/throughput.ts";
import type { TargetFigures } from "../../bench/scenarios/pairs-load.ts";
import { type FloodRun, ratioLine } from "../../bench/scenarios/offline-flood.ts";
import { type ConnectionsFigures, perConnSpread, roundLines } from "../../bench/scenarios/connections.ts";

const drainCase = (proto: "v0" | "v1", messages: number, lastMs: number) => ({
  proto,
  messages,
  fillMs: 1,
  stored: messages,
  loginMs: 1,
  firstMs: 2,
  lastMs,
  delivered: messages,
  complete: true,
  outOfOrder: 0,
  msgsPerSec: 1,
  serverUsPerMsg: 3,
  serverPct: 50,
  targetMs: null,
});

test("rows are judged against their targets; missing figures are never invented", () => {
  const f = {
    drain: { params: {}, cases: [drainCase("v0", 50_000, 59), drainCase("v1", 200_000, 300)] },
  } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("50k stored")).toContain("59.0 ms");
  expect(row("50k stored")).toMatch(/met$/);
  expect(row("50k stored")).not.toContain("NOT met");
  expect(row("200k stored")).toContain("NOT met");
  for (const r of ["v1 saturation", "v1 server CPU", "v1 p99", "offline flood", "idle logged-in"]) {
    expect(row(r)).toContain("not measured");
  }
  // title, header, rule, then one line per row: 3 single rows + (3 throughput figures + the flood) x 2 logins
  expect(lines.slice(3)).toHaveLength(11);
});

// A pairs run's figures: msgs/s and µs/msg at saturation, and the paced phase's rate and p99.
const phase = (msgsPerSec: number, usPerMsg: number, rate: number | null, p99Ms: number) => ({
  msgsPerSec,
  targetRate: rate,
  cpu: { serverUsPerMsg: usPerMsg },
  latency: { p50Ms: p99Ms / 2, p99Ms },
});
const target = (label: string, bundles: boolean, sat: number, us: number, rate: number, p99: number) =>
  ({
    label,
    bundles,
    saturation: phase(sat, us, null, 10),
    paced: phase(rate, us, rate, p99),
    pacedMore: [],
  }) as unknown as TargetFigures;

const params = { proto: "v1", conns: 1000 };

test("plain and bundled v1 each get their own rows, ratio to the same relay and verdict", () => {
  const relay = {
    ...target("relay", false, 100_000, 10, 40_000, 2),
    pacedMore: [phase(50_000, 10, 50_000, 4)],
  } as unknown as TargetFigures;
  const plain = target("iris", false, 80_000, 15, 40_000, 20); // 0.8x, 1.5x CPU, p99 10x
  const bundled = target("iris bundled", true, 100_000, 11, 50_000, 5); // 1.0x, 1.1x, p99 1.25x
  const ratios = [ratiosOf(plain, relay), ratiosOf(bundled, relay)];
  // Each paced p99 is judged against the relay paced at the same rate.
  expect(ratios[0]!.pacedP99).toBeCloseTo(10);
  expect(ratios[1]!.pacedP99).toBeCloseTo(1.25);
  const f = { throughput: { params, targets: [plain, bundled], baseline: relay, ratios } } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("v1 saturation throughput, 1,000 conns, plain v1")).toContain("0.80x relay");
  expect(row("v1 saturation throughput, 1,000 conns, plain v1")).toContain("NOT met");
  expect(row("v1 saturation throughput, 1,000 conns, bundled v1")).toContain("1.00x relay");
  expect(row("v1 saturation throughput, 1,000 conns, bundled v1")).not.toContain("NOT met");
  expect(row("v1 server CPU per message at saturation, plain")).toContain("1.50x relay");
  expect(row("v1 server CPU per message at saturation, plain")).toContain("NOT met");
  expect(row("v1 server CPU per message at saturation, bundled")).toContain("1.10x relay");
  expect(row("v1 server CPU per message at saturation, bundled")).toMatch(/ met$/);
  expect(row("v1 p99 paced at 50% of Iris's saturation, plain")).toContain("NOT met");
  expect(row("v1 p99 paced at 50% of Iris's saturation, bundled")).toMatch(/ met$/);
});

test("a run without bundled logins keeps the plain rows and says why the bundled ones are missing", () => {
  const relay = target("relay", false, 100_000, 10, 40_000, 2);
  const plain = target("iris", false, 95_000, 11, 40_000, 2);
  const f = {
    throughput: { params, targets: [plain], baseline: relay, ratios: [ratiosOf(plain, relay)] },
  } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("v1 saturation throughput, 1,000 conns, plain v1")).toContain("0.95x relay");
  expect(row("v1 saturation throughput, 1,000 conns, bundled v1")).toContain("not measured: no bundled v1 run");
});

test("--frame-floor is off unless asked; ratios to the relay answering sends are labelled as such", () => {
  expect(parseArgs(["throughput"]).frameFloor).toBe(false);
  expect(parseArgs(["throughput", "--frame-floor"]).frameFloor).toBe(true);
  const floor = target("relay", false, 80_000, 12, 40_000, 2);
  const plain = target("iris", false, 72_000, 15, 40_000, 4);
  const r = ratiosOf(plain, floor, "relay answering sends");
  expect(r.label).toBe(`${plain.label} / relay answering sends`);
  expect(r.saturationThroughput).toBeCloseTo(0.9, 5);
  expect(r.cpuPerMessage).toBeCloseTo(1.25, 5);
  expect(ratiosOf(plain, floor).label).toBe(`${plain.label} / baseline`);
  // In the issue table the floor ratio is said beside the cell; the verdict stays against the relay.
  const relay = target("relay", false, 100_000, 10, 40_000, 2);
  const f = {
    throughput: { params, targets: [plain], baseline: relay, ratios: [ratiosOf(plain, relay)], floorRatios: [r] },
  } as unknown as RunFigures;
  const row = issueTargetLines(f).find((l) => l.startsWith("v1 server CPU per message at saturation, plain v1"))!;
  expect(row).toContain("1.50x relay; 1.25x the relay answering sends");
  expect(row).toContain("NOT met");
});

test("`all` measures both logins; a single throughput run measures the one asked for", () => {
  expect(parseArgs(["all"]).bothLogins).toBe(true);
  expect(parseArgs(["throughput"]).bothLogins).toBe(false);
  expect(loginsOf(parseArgs(["all"]), false)).toEqual(["plain", "bundled"]);
  expect(loginsOf(parseArgs(["throughput", "--bundles"]), false)).toEqual(["bundled"]);
  expect(loginsOf(parseArgs(["throughput"]), false)).toEqual(["plain"]);
  expect(loginsOf(parseArgs(["throughput", "--both-logins", "--proto", "v0"]), false)).toEqual(["plain"]);
  expect(loginsOf(parseArgs(["throughput", "--both-logins"]), true)).toEqual(["plain"]);
});

// One offline-flood run's figures, as the scenario returns them per login.
const floodRun = (login: "plain" | "bundled", storedPerSec: number, p99Ms: number, recipients = 10_000) => ({
  login,
  params: { recipients },
  flood: { storedPerSec },
  pairDuringFlood: { latency: { p99Ms } },
});

test("the flood gets a row per login, each judged on rows/s and the pair's p99 together", () => {
  const f = {
    "offline-flood": { runs: [floodRun("plain", 40_000, 30), floodRun("bundled", 160_000, 4)] },
  } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("offline flood into 10,000 inboxes, sustained, plain v1")).toContain("40,000 rows/s, pair p99 30.00 ms");
  expect(row("offline flood into 10,000 inboxes, sustained, plain v1")).toContain("NOT met");
  expect(row("offline flood into 10,000 inboxes, sustained, bundled v1")).toMatch(/ met$/);
  // Fast enough but the pair's p99 over 5 ms: not met.
  const slowPair = { "offline-flood": { runs: [floodRun("bundled", 160_000, 6)] } } as unknown as RunFigures;
  const l2 = issueTargetLines(slowPair);
  expect(l2.find((l) => l.startsWith("offline flood into 10,000 inboxes, sustained, bundled v1"))).toContain("NOT met");
  expect(l2.find((l) => l.startsWith("offline flood into 10,000 inboxes, sustained, plain v1")))
    .toContain("not measured: no plain v1 flood in this run");
  // A smoke-sized flood is not the 10,000-inbox figure.
  const small = { "offline-flood": { runs: [floodRun("plain", 160_000, 1, 100)] } } as unknown as RunFigures;
  expect(issueTargetLines(small).find((l) => l.startsWith("offline flood into 10,000 inboxes, sustained, plain v1")))
    .toContain("not measured: ran into 100 inboxes");
});

test("the flood's row names the relay storing nothing, when it ran, as the machine's ceiling; the verdict stays absolute", () => {
  const f = {
    "offline-flood": {
      runs: [floodRun("plain", 40_000, 30), floodRun("bundled", 60_000, 20)],
      relay: [floodRun("plain", 120_000, 44)],
    },
  } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const plain = lines.find((l) => l.startsWith("offline flood into 10,000 inboxes, sustained, plain v1"))!;
  expect(plain).toContain(
    "40,000 rows/s, pair p99 30.00 ms (relay storing nothing: 120,000 rows/s, pair p99 44.00 ms)",
  );
  expect(plain).toContain("NOT met");
  // No relay flood for this login: the cell is Iris's alone.
  const bundled = lines.find((l) => l.startsWith("offline flood into 10,000 inboxes, sustained, bundled v1"))!;
  expect(bundled).toContain("60,000 rows/s, pair p99 20.00 ms");
  expect(bundled).not.toContain("relay storing nothing");
});

test("the flood's ratio line divides Iris's rows/s by the relay's and shows both pairs' p99", () => {
  const iris = floodRun("bundled", 50_000, 20) as unknown as FloodRun;
  const relay = floodRun("bundled", 500_000, 10) as unknown as FloodRun;
  expect(ratioLine(iris, relay)).toBe(
    "0.10x the relay's stored rows/s (50,000 against 500,000); pair p99 during the flood 20.00 against 10.00 ms",
  );
});

test("offline-flood runs both logins under `all` and --both-logins, else the one asked", () => {
  expect(loginsOf(parseArgs(["offline-flood"]), false)).toEqual(["plain"]);
  expect(loginsOf(parseArgs(["offline-flood", "--bundles"]), false)).toEqual(["bundled"]);
  expect(loginsOf(parseArgs(["offline-flood", "--both-logins"]), false)).toEqual(["plain", "bundled"]);
});

test("--rounds: each ratio's verdict uses its median over the rounds, and says so with the range", () => {
  const relay = target("relay", false, 100_000, 10, 40_000, 2);
  // Three rounds of the same two runs: plain throughput 0.85x, 0.95x, 1.05x; bundled CPU 1.1x, 1.3x, 1.25x.
  const rounds = [
    [
      ratiosOf(target("iris", false, 85_000, 11, 40_000, 2), relay),
      ratiosOf(target("iris b", true, 120_000, 11, 40_000, 8), relay),
    ],
    [
      ratiosOf(target("iris", false, 95_000, 11, 40_000, 2), relay),
      ratiosOf(target("iris b", true, 120_000, 13, 40_000, 2), relay),
    ],
    [
      ratiosOf(target("iris", false, 105_000, 11, 40_000, 2), relay),
      ratiosOf(target("iris b", true, 120_000, 12.5, 40_000, 2), relay),
    ],
  ];
  const med = medianRatios(rounds);
  expect(med).toHaveLength(2);
  expect(med[0]!.saturationThroughput).toBeCloseTo(0.95);
  expect(med[0]!.range!.saturationThroughput).toEqual([0.85, 1.05]);
  expect(med[1]!.cpuPerMessage).toBeCloseTo(1.25);
  expect(med[1]!.pacedP99).toBeCloseTo(1); // 4x, 1x, 1x: one bad round does not decide
  expect(med[0]!.rounds).toBe(3);
  expect(ratioLines(med[0]!)[0]).toContain("median of 3 rounds");
  expect(ratioLines(med[0]!)[0]).toContain("0.95x (0.85-1.05)");
  const f = { throughput: { params, targets: [], baseline: relay, ratios: med } } as unknown as RunFigures;
  const lines = issueTargetLines(f);
  const row = (start: string) => lines.find((l) => l.startsWith(start))!;
  expect(row("v1 saturation throughput, 1,000 conns, plain v1")).toContain(
    "0.95x relay (median of 3 rounds, 0.85-1.05)",
  );
  expect(row("v1 saturation throughput, 1,000 conns, plain v1")).toMatch(/ met$/);
  expect(row("v1 server CPU per message at saturation, bundled")).toContain("NOT met");
  expect(row("v1 p99 paced at 50% of Iris's saturation, bundled")).toMatch(/ met$/);
});

test("one round's ratios are its own, unchanged; --rounds takes a positive count", () => {
  const relay = target("relay", false, 100_000, 10, 40_000, 2);
  const one = [ratiosOf(target("iris", false, 90_000, 12, 40_000, 3), relay)];
  expect(medianRatios([one])).toBe(one);
  expect(ratioLines(one[0]!)[0]).not.toContain("median");
  expect(parseArgs(["throughput"]).rounds).toBe(1);
  expect(parseArgs(["throughput", "--rounds", "3"]).rounds).toBe(3);
  expect(() => parseArgs(["throughput", "--rounds", "0"])).toThrow("--rounds needs a positive integer");
});

// A connections run: KB per connection at 5k and 10k for each round (Iris, relay).
const connRun = (rounds: [number, number][][]): ConnectionsFigures => {
  const ramp = (label: string, kb: number[]) => ({
    label,
    rssBeforeKb: 1,
    levels: [5000, 10_000].map((c, i) => ({ connections: c, perConnKb: kb[i] })),
    rssAfterCloseKb: 1,
    totalConnectMs: 1,
  });
  const last = rounds[rounds.length - 1]!;
  return {
    params: { levels: [5000, 10_000], workers: 2, proto: "v1", settleMs: 1500, rounds: rounds.length },
    target: ramp("iris", last.map(([i]) => i)),
    baseline: ramp("baseline relay", last.map(([, b]) => b)),
    perConnRatio: [],
    rounds: rounds.map((r) => ({ target: r.map(([i]) => i), baseline: r.map(([, b]) => b) })),
  } as unknown as ConnectionsFigures;
};

test("the idle row: one round is judged on itself; with --rounds on the median at 10k, with the range and the relay's", () => {
  const idleRow = (f: ConnectionsFigures) =>
    issueTargetLines({ connections: f } as RunFigures).find((l) => l.startsWith("idle logged-in"))!;
  const one = idleRow(connRun([[[3.1, 3.8], [2.48, 2.47]]]));
  expect(one).toContain("2.48 KB; relay 2.47 KB");
  expect(one).toMatch(/ met$/);
  expect(one).not.toContain("NOT met");
  // Three rounds: 2.61, 2.40, 2.45 at 10k. The last round alone (2.61) would fail; the median passes.
  const f = connRun([[[3, 4], [2.4, 2.5]], [[3, 4], [2.45, 2.44]], [[3, 4], [2.61, 2.46]]]);
  expect(perConnSpread(f, 10_000, "target")).toEqual({ median: 2.45, lo: 2.4, hi: 2.61, n: 3 });
  expect(perConnSpread(f, 10_000, "baseline")).toEqual({ median: 2.46, lo: 2.44, hi: 2.5, n: 3 });
  expect(perConnSpread(f, 15_000, "target")).toBeNull();
  const row = idleRow(f);
  expect(row).toContain("2.45 KB (2.40–2.61, median of 3); relay 2.46 KB (2.44–2.50, median of 3)");
  expect(row).toMatch(/ met$/);
  expect(row).not.toContain("NOT met");
  expect(idleRow(connRun([[[3, 4], [2.6, 2.5]], [[3, 4], [2.52, 2.44]], [[3, 4], [2.3, 2.46]]]))).toContain("NOT met");
  expect(roundLines(f)).toEqual([
    "KB/conn, median of 3 rounds (range); the table above is the last round:",
    "  iris: 5,000 3.00 (3.00–3.00), 10,000 2.45 (2.40–2.61)",
    "  baseline relay: 5,000 4.00 (4.00–4.00), 10,000 2.46 (2.44–2.50)",
  ]);
  expect(roundLines(connRun([[[3, 4], [2.4, 2.5]]]))).toEqual([]);
  // Results written before --rounds: the one ramp of each is the only round.
  const old = { ...connRun([[[3, 4], [2.4, 2.5]]]), rounds: undefined };
  expect(perConnSpread(old, 10_000, "baseline")).toEqual({ median: 2.5, lo: 2.5, hi: 2.5, n: 1 });
  expect(perConnSpread({ ...old, baseline: null }, 10_000, "baseline")).toBeNull();
});
