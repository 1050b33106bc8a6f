// `npm run bench -- <scenario> [flags]`: runs one scenario (or all), prints a human summary and
// writes bench/results/<scenario>-<UTC stamp>.{json,txt,svg} (and latest/ for full runs).

import { existsSync } from "node:fs";
import { ArgsError, type BenchArgs, commandLine, parseArgs, type ScenarioName, USAGE } from "./lib/args.ts";
import type { Ctx, Scenario } from "./lib/context.ts";
import { issueTargetLines, type RunFigures } from "./lib/issue-targets.ts";
import { describeMachine, machineLine } from "./lib/machine.ts";
import { type BenchResult, DEFAULT_RESULTS_DIR, writeResults } from "./lib/results.ts";
import { DEFAULT_BINARY, killStarted, startIrisAutoTuned } from "./lib/server.ts";
import { clockTicks, othersDeltaMicros, snapshotOthers } from "./lib/procstat.ts";
import { disturbance, pct } from "./lib/phases.ts";
import { baseline } from "./scenarios/baseline.ts";
import { cluster } from "./scenarios/cluster.ts";
import { clusterScale } from "./scenarios/cluster-scale.ts";
import { connections } from "./scenarios/connections.ts";
import { consoleSize } from "./scenarios/console.ts";
import { drain } from "./scenarios/drain.ts";
import { hotspot } from "./scenarios/hotspot.ts";
import { http } from "./scenarios/http.ts";
import { offlineFlood } from "./scenarios/offline-flood.ts";
import { startup } from "./scenarios/startup.ts";
import { throughput } from "./scenarios/throughput.ts";

type One = Exclude<ScenarioName, "all">;

const SCENARIOS: Record<One, Scenario<unknown>> = {
  throughput,
  connections,
  hotspot,
  drain,
  "offline-flood": offlineFlood,
  startup,
  http,
  baseline,
  console: consoleSize,
  cluster,
  "cluster-scale": clusterScale,
};

/** Scenarios that start dist/iris themselves even when --url is given (under `all`; alone they refuse it: args.ts). */
const NEEDS_BINARY: One[] = [
  "hotspot",
  "drain",
  "offline-flood",
  "startup",
  "http",
  "console",
  "cluster",
  "cluster-scale",
];

/** Hard ceiling per scenario: the bench stops by itself even if a server hangs. */
const LIMIT_MS = { smoke: 120_000, full: 15 * 60_000 };

async function runOne(name: One, args: BenchArgs, argv: string[]): Promise<BenchResult<unknown>> {
  const started = new Date();
  const binary = args.binary ?? DEFAULT_BINARY;
  const external = args.url !== null || args.tcp !== null;
  if ((NEEDS_BINARY.includes(name) || (!external && name !== "baseline")) && !existsSync(binary)) {
    throw new Error(`${binary} not found: build it first with \`npx bun run build.ts\``);
  }
  const ctx: Ctx = {
    args: { ...args, scenario: name },
    binary: args.binary ?? undefined,
    params: {},
    notes: [],
    problems: [],
    serverOutput: [],
    log: (m) => console.error(`[bench ${name}] ${m}`),
  };
  const limit = args.smoke ? LIMIT_MS.smoke : LIMIT_MS.full;
  // Other processes' CPU over the whole scenario: the machine is shared, so say how quiet it was.
  const others0 = snapshotOthers(new Set([process.pid]), process.pid);
  const wall0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const out = await Promise.race([
    SCENARIOS[name](ctx),
    new Promise<never>((
      _,
      rej,
    ) => (timer = setTimeout(() => rej(new Error(`${name}: exceeded ${limit / 1000} s`)), limit))),
  ]).finally(() => clearTimeout(timer));
  const otherCpuPct = pct(
    othersDeltaMicros(others0, snapshotOthers(new Set([process.pid]), process.pid), clockTicks()),
    performance.now() - wall0,
  );
  const disturbed = disturbance(`${name} (whole run)`, otherCpuPct);
  if (disturbed) ctx.problems.push(disturbed);
  const machine = describeMachine(binary);
  const cmd = commandLine(
    argv[0] === "all" || !argv.includes(name) ? [name, ...argv.filter((x) => x !== "all")] : argv,
  );
  const result: BenchResult<unknown> = {
    scenario: name,
    smoke: args.smoke,
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 100) / 10,
    command: cmd,
    machine,
    params: ctx.params,
    otherCpuPct,
    figures: out.figures,
    notes: [...ctx.notes, `Machine: ${machine.note}.`],
    problems: ctx.problems,
    serverOutput: ctx.serverOutput,
    files: { json: "", txt: "", svgs: [] },
  };
  const text = [
    `== Iris bench: ${name}${args.smoke ? " (smoke)" : ""}  ${result.startedAt}  (${result.durationS} s)`,
    `command: ${cmd}`,
    `machine: ${machineLine(machine)}`,
    `other processes on the machine during the run: ${otherCpuPct}% of a core`,
    "",
    ...out.summary,
    "",
    "notes:",
    ...result.notes.map((n) => `  - ${n}`),
    ...(result.problems.length ? ["", "PROBLEMS:", ...result.problems.map((p) => `  ! ${p}`)] : []),
    ...(result.serverOutput.length
      ? ["", "server output (warn and above):", ...result.serverOutput.map((l) => `  ${l}`)]
      : []),
  ].join("\n");
  const dir = args.out ?? DEFAULT_RESULTS_DIR;
  writeResults(result, text, out.charts, { dir, latest: args.out === null && !args.smoke });
  console.log(text);
  console.log(`results: ${dir}/${result.files.json}\n`);
  return result;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let args: BenchArgs;
  try {
    args = parseArgs(argv);
    startIrisAutoTuned(args.autoTune);
  } catch (e) {
    if (e instanceof ArgsError) {
      console.error(`bench: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  const names: One[] = args.scenario === "all"
    ? ["throughput", "baseline", "connections", "hotspot", "drain", "offline-flood", "startup", "http"]
    : [args.scenario];
  let failed = 0;
  const figures: Record<string, unknown> = {};
  for (const n of names) {
    try {
      figures[n] = (await runOne(n, args, argv)).figures;
    } catch (e) {
      failed++;
      killStarted();
      console.error(`bench ${n} failed: ${(e as Error).stack ?? e}`);
    }
  }
  // `all`: issue 14's target table, each row next to its target (or why it was not measured); also
  // after `throughput --both-logins`, whose rows (plain and bundled v1) it fills.
  const table = args.scenario === "all" || (args.scenario === "throughput" && args.bothLogins);
  if (table) console.log(issueTargetLines(figures as RunFigures).join("\n") + "\n");
  return failed ? 1 : 0;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    killStarted();
    process.exit(130);
  });
}

main().then((code) => {
  killStarted();
  process.exit(code);
}, (e) => {
  killStarted();
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
