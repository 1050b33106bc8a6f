// Command line of `chaos/run.ts <scenario> [--short] [--seconds N] [--binary PATH] [--key value ...]`.
// Scenario-specific knobs are free-form `--key value` pairs, read with num()/str() and a default
// for each size, so every number a scenario uses can be overridden without editing code.

import { DEFAULT_BINARY } from "./server.ts";

export interface RunOptions {
  short: boolean;
  /** Overrides the scenario's chaos duration. */
  seconds: number | null;
  binary: string;
  extra: Map<string, string>;
}

export class UsageError extends Error {}

export function parseOptions(argv: string[]): { scenario: string; opts: RunOptions } {
  const [scenario, ...rest] = argv;
  if (!scenario || scenario.startsWith("--")) throw new UsageError("missing scenario name");
  const opts: RunOptions = { short: false, seconds: null, binary: DEFAULT_BINARY, extra: new Map() };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf("=");
    const key = arg.slice(2, eq < 0 ? undefined : eq);
    if (key === "short") {
      opts.short = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = rest[i + 1];
      // --server-args takes server flags as its value, so that value may itself start with "--".
      if (next === undefined || (next.startsWith("--") && key !== "server-args")) {
        throw new UsageError(`--${key} needs a value`);
      }
      value = next;
      i++;
    }
    if (key === "seconds") {
      const n = Number(value);
      if (!(n > 0) || n > 3600) throw new UsageError("--seconds must be in (0, 3600]");
      opts.seconds = n;
    } else if (key === "binary") opts.binary = value;
    else opts.extra.set(key, value);
  }
  return { scenario, opts };
}

/** A numeric knob: `--key N` if given, else the default for the run's size. */
export function num(opts: RunOptions, key: string, full: number, short: number): number {
  const v = opts.extra.get(key);
  if (v === undefined) return opts.short ? short : full;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${key} must be a non-negative number`);
  return n;
}

/** The chaos duration in seconds: --seconds, else the scenario's default for the run's size. */
export function seconds(opts: RunOptions, full: number, short: number): number {
  return opts.seconds ?? (opts.short ? short : full);
}
