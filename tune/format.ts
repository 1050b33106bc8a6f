// Printing a plan: aligned text tables for people, JSON for scripts. Pure.

import type { Plan } from "./plan.ts";

/** Pad every column but the last to its widest cell; two spaces between columns. */
function alignedTable(header: string[], body: string[][]): string[] {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((cells) => (cells[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)];
}

/** What was probed (with sources), then each decision with its reason, OS advice and notes. */
export function formatPlanTable(plan: Plan): string {
  const out = [
    ...alignedTable(
      ["probe", "value", "source"],
      plan.facts.map((f) => [f.name, f.value, f.source]),
    ),
    "",
    ...alignedTable(
      ["setting", "value", "probe", "why"],
      plan.rows.map((r) => [r.setting, r.value, r.probe, r.why]),
    ),
  ];
  if (plan.osAdvice.length > 0) {
    out.push("", "OS settings iris cannot apply itself (run as root):");
    out.push(...plan.osAdvice.map((command) => `  ${command}`));
  }
  if (plan.notes.length > 0) {
    out.push("", "notes:");
    out.push(...plan.notes.map((note) => `  - ${note}`));
  }
  return out.join("\n");
}

/** The whole plan as pretty JSON (key order as built by plan()). */
export function planToJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2);
}
