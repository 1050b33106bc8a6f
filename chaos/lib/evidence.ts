// A chaos run's evidence: the clients' files (acks and seq logs: the ledger the judge reads),
// every line of every server, the run's progress log and verdict, and the servers' stores. It
// all lives in one directory per run. A passing run removes it. A failing run keeps it under a
// stable path, printed in its verdict line, so that a rare failure inside `npm test` (whose
// scenarios run in throwaway processes) can still be traced afterwards. `--keep 1` keeps a
// passing run's evidence too, where it is.

import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** Under the temp dir ($TMPDIR): where failed runs' evidence is kept, one directory per run. */
export const FAILED_DIR = "iris-chaos-failed";
/** A run's evidence directory while it runs: `<tmp>/iris-chaos-run-<scenario>-<pid>-XXXXXX`. */
export function runDirPrefix(scenario: string, pid: number): string {
  return `iris-chaos-run-${scenario}-${pid}-`;
}

/** What becomes of a run's evidence: removed, kept where it is, or moved to the failed runs' place. */
export type Fate = "remove" | "keep" | "keepFailed";

/** Pure: a failure is always kept; a pass is removed unless `--keep 1` asked to keep it. */
export function evidenceFate(pass: boolean, keepAsked: boolean): Fate {
  if (!pass) return "keepFailed";
  return keepAsked ? "keep" : "remove";
}

/** Pure: where a failed run's evidence goes, `<tmp>/iris-chaos-failed/<scenario>-<UTC stamp>-<pid>`. */
export function failedEvidencePath(tmp: string, scenario: string, at: Date, pid: number): string {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z"); // 20261201T091500Z
  return join(tmp, FAILED_DIR, `${scenario}-${stamp}-${pid}`);
}

export class RunEvidence {
  /** The run's evidence directory (removed or moved by finish()). */
  readonly dir: string;
  private fate: Fate | null = null;

  constructor(private readonly scenario: string, private readonly tmp = tmpdir()) {
    this.dir = mkdtempSync(join(tmp, runDirPrefix(scenario, process.pid)));
  }

  /** A subdirectory for one kind of evidence, created if needed. */
  sub(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Appends one line to a file of the evidence (ignored once the evidence is gone). */
  append(file: string, line: string): void {
    if (!existsSync(this.dir)) return;
    mkdirSync(dirname(join(this.dir, file)), { recursive: true });
    appendFileSync(join(this.dir, file), line + "\n");
  }

  /** Decided once the verdict is known and before cleanup, so that cleanup steps can save what they remove. */
  decide(pass: boolean, keepAsked: boolean): void {
    this.fate = evidenceFate(pass, keepAsked);
  }

  get kept(): boolean {
    return this.fate === "keep" || this.fate === "keepFailed";
  }

  /** Copies `src` (a store its owner is about to remove) into the evidence, if the evidence is kept. */
  preserve(name: string, src: string): void {
    if (this.kept && existsSync(src) && existsSync(this.dir)) cpSync(src, join(this.dir, name), { recursive: true });
  }

  /** Removes the evidence or keeps it; returns where it is kept (null: removed). */
  finish(at = new Date()): string | null {
    const fate = this.fate ?? "keepFailed"; // never decided: something went wrong, keep it
    if (fate === "remove") {
      rmSync(this.dir, { recursive: true, force: true });
      return null;
    }
    if (fate === "keep") return this.dir;
    const to = failedEvidencePath(this.tmp, this.scenario, at, process.pid);
    mkdirSync(join(this.tmp, FAILED_DIR), { recursive: true });
    try {
      renameSync(this.dir, to);
    } catch {
      return this.dir; // e.g. a name taken: the evidence stays where it is, and that path is printed
    }
    return to;
  }
}
