// `console`: what a browser downloads on the console's first load, against the built binary: the
// page, every script and stylesheet it references (followed through their static imports), raw
// and gzip-compressed. Also the SDK, which the console imports only when "Try it" connects.

import type { Scenario } from "../lib/context.ts";
import { barChart } from "../lib/svg.ts";
import { startTarget } from "../lib/targets.ts";

/** The budget for the console's first load. */
export const FIRST_LOAD_BUDGET_BYTES = 200 * 1024;

export interface Part {
  path: string;
  bytes: number;
  gzipBytes: number;
}

export interface ConsoleFigures {
  firstLoad: { parts: Part[]; bytes: number; gzipBytes: number; budgetBytes: number; withinBudget: boolean };
  sdkOnDemand: Part;
}

/** Same-origin URLs a page or script pulls in up front (src=, href=, static `from "…"`). Pure. */
export function referencedPaths(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:src|href)="(\/[^"]+)"/g)) out.add(m[1]!);
  for (const m of text.matchAll(/\bfrom\s*"(\/[^"]+)"/g)) out.add(m[1]!);
  return [...out];
}

async function measure(base: string, path: string): Promise<{ part: Part; text: string }> {
  const res = await fetch(base + path);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  const body = new Uint8Array(await res.arrayBuffer());
  return {
    part: { path, bytes: body.byteLength, gzipBytes: Bun.gzipSync(body).byteLength },
    text: res.ok ? new TextDecoder().decode(body) : "",
  };
}

async function firstLoad(base: string): Promise<Part[]> {
  const parts: Part[] = [];
  const queue = ["/console"];
  const seen = new Set(queue);
  while (queue.length) {
    const { part, text } = await measure(base, queue.shift()!);
    parts.push(part);
    for (const p of referencedPaths(text)) {
      if (!seen.has(p)) queue.push(p), seen.add(p);
    }
  }
  return parts;
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

export const consoleSize: Scenario<ConsoleFigures> = async (ctx) => {
  const t = await startTarget(ctx, "iris", ctx.args.shards?.[0] ?? null);
  try {
    const parts = await firstLoad(t.http!);
    const sdk = (await measure(t.http!, "/sdk/iris-client.js")).part;
    const bytes = parts.reduce((a, p) => a + p.bytes, 0);
    const gzipBytes = parts.reduce((a, p) => a + p.gzipBytes, 0);
    const withinBudget = bytes <= FIRST_LOAD_BUDGET_BYTES;
    if (!withinBudget) ctx.problems.push(`console first load ${kib(bytes)} exceeds ${kib(FIRST_LOAD_BUDGET_BYTES)}`);
    const all = [...parts, sdk];
    return {
      figures: {
        firstLoad: { parts, bytes, gzipBytes, budgetBytes: FIRST_LOAD_BUDGET_BYTES, withinBudget },
        sdkOnDemand: sdk,
      },
      charts: [{
        name: "bytes",
        svg: barChart({
          title: "Console first load and the on-demand SDK (KiB)",
          categories: all.map((p) => p.path),
          series: [
            { name: "raw", values: all.map((p) => p.bytes / 1024) },
            { name: "gzip", values: all.map((p) => p.gzipBytes / 1024) },
          ],
          yLabel: "KiB",
        }),
      }],
      summary: [
        ...parts.map((p) => `${p.path}: ${kib(p.bytes)} (gzip ${kib(p.gzipBytes)})`),
        `first load: ${kib(bytes)} raw, ${kib(gzipBytes)} gzip (budget ${kib(FIRST_LOAD_BUDGET_BYTES)})`,
        `SDK, loaded only by "Try it": ${kib(sdk.bytes)} raw, ${kib(sdk.gzipBytes)} gzip`,
      ],
    };
  } finally {
    await t.stop();
  }
};
