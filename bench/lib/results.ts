// One run's results on disk: <scenario>-<UTC stamp>.json / .txt / -<chart>.svg, and a copy of
// the newest full run per scenario in latest/ (small files, committed, openable in a browser).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { Machine } from "./machine.ts";

export const DEFAULT_RESULTS_DIR = resolve(import.meta.dir, "../results");
const REPO = resolve(import.meta.dir, "../..");

/**
 * Runs the project's `deno fmt` over files written inside the repository, so committed results
 * pass `npm run check` (deno fmt reformats SVG). Files outside the repo are left as written.
 */
function formatInRepo(paths: string[]): void {
  const mine = paths.filter((p) => !relative(REPO, p).startsWith(".."));
  const deno = join(REPO, "node_modules/.bin/deno");
  if (mine.length === 0 || !existsSync(deno)) return;
  const r = Bun.spawnSync([deno, "fmt", "--quiet", ...mine], { cwd: REPO, stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) console.error(`bench: deno fmt on results failed: ${r.stderr.toString().trim()}`);
}

export interface Chart {
  name: string;
  svg: string;
}

export interface BenchResult<F = Record<string, unknown>> {
  scenario: string;
  smoke: boolean;
  startedAt: string;
  durationS: number;
  command: string;
  machine: Machine;
  params: Record<string, unknown>;
  /** CPU other processes on the machine used during the run, % of one core (lower bound). */
  otherCpuPct: number;
  figures: F;
  /** How to read the figures (ratio vs absolute, what was shared, what was configured). */
  notes: string[];
  /** Things that went wrong or look wrong: lost messages, server errors, unexpected closes. */
  problems: string[];
  /** Server output lines at warn level or above, verbatim (first 50). */
  serverOutput: string[];
  files: { json: string; txt: string; svgs: string[] };
}

/** 2025-11-24T07:30:00.123Z → 2025-11-24T07-30-00Z (safe in file names). */
export function fileStamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
}

export interface WriteOptions {
  dir: string;
  /** Also replace latest/<scenario>.* (full runs into the default directory only). */
  latest: boolean;
}

export function writeResults(
  r: BenchResult<unknown>,
  text: string,
  charts: Chart[],
  o: WriteOptions,
): BenchResult<unknown> {
  mkdirSync(o.dir, { recursive: true });
  const base = `${r.scenario}-${fileStamp(new Date(r.startedAt))}`;
  const svgs = charts.map((c) => `${base}-${c.name}.svg`);
  r.files = { json: `${base}.json`, txt: `${base}.txt`, svgs };
  charts.forEach((c, i) => writeFileSync(join(o.dir, svgs[i]!), c.svg));
  writeFileSync(join(o.dir, r.files.txt), text.endsWith("\n") ? text : text + "\n");
  writeFileSync(join(o.dir, r.files.json), JSON.stringify(r, null, 2) + "\n");
  if (o.latest) {
    const ld = join(o.dir, "latest");
    mkdirSync(ld, { recursive: true });
    for (const f of previousLatestFiles(ld, r.scenario)) rmSync(join(ld, f), { force: true });
    const latest = {
      ...r,
      files: {
        json: `${r.scenario}.json`,
        txt: `${r.scenario}.txt`,
        svgs: charts.map((c) => `${r.scenario}-${c.name}.svg`),
      },
    };
    charts.forEach((c) => writeFileSync(join(ld, `${r.scenario}-${c.name}.svg`), c.svg));
    writeFileSync(join(ld, `${r.scenario}.txt`), text.endsWith("\n") ? text : text + "\n");
    writeFileSync(join(ld, `${r.scenario}.json`), JSON.stringify(latest, null, 2) + "\n");
  }
  const written = [r.files.json, ...svgs].map((f) => resolve(o.dir, f));
  if (o.latest) written.push(...charts.map((c) => resolve(o.dir, "latest", `${r.scenario}-${c.name}.svg`)));
  formatInRepo(written);
  return r;
}

/**
 * The files of a scenario's previous latest copy: its json, txt and the charts that json names.
 * Not a name prefix: "cluster-*.svg" would also match the charts of "cluster-scale".
 */
function previousLatestFiles(ld: string, scenario: string): string[] {
  const json = join(ld, `${scenario}.json`);
  if (!existsSync(json)) return [];
  let svgs: string[] = [];
  try {
    const old = JSON.parse(readFileSync(json, "utf8")) as { files?: { svgs?: unknown } };
    if (Array.isArray(old.files?.svgs)) svgs = old.files.svgs.filter((f): f is string => typeof f === "string");
  } catch {
    // An unreadable old copy: replace its json and txt; its charts are overwritten by name.
  }
  return [`${scenario}.json`, `${scenario}.txt`, ...svgs.filter((f) => !f.includes("/"))];
}
