// `bun run bench/console-size.ts`: what a browser downloads on the console's first load, measured
// against the built binary: the page, every script and stylesheet it references (followed by
// their static imports), raw and gzip-compressed. Also the SDK, which the console loads only when
// the "Try it" pane connects. Writes bench/results/console-size-<stamp>.json and latest/.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_RESULTS_DIR, fileStamp } from "./lib/results.ts";
import { startIris } from "./lib/server.ts";

/** The budget for the first load. */
const FIRST_LOAD_BUDGET_BYTES = 200 * 1024;

interface Part {
  path: string;
  bytes: number;
  gzipBytes: number;
}

/** Same-origin URLs a page or script pulls in up front (src=, href=, static `from "…"`). */
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
  const part = { path, bytes: body.byteLength, gzipBytes: Bun.gzipSync(body).byteLength };
  return { part, text: new TextDecoder().decode(body) };
}

async function firstLoad(base: string): Promise<Part[]> {
  const parts: Part[] = [];
  const queue = ["/console"];
  const seen = new Set(queue);
  while (queue.length) {
    const { part, text } = await measure(base, queue.shift()!);
    parts.push(part);
    for (const p of referencedPaths(text)) if (!seen.has(p)) seen.add(p), queue.push(p);
  }
  return parts;
}

const server = await startIris();
try {
  const parts = await firstLoad(server.http);
  const sdk = (await measure(server.http, "/sdk/iris-client.js")).part;
  const total = parts.reduce((a, p) => a + p.bytes, 0);
  const gzip = parts.reduce((a, p) => a + p.gzipBytes, 0);
  const result = {
    scenario: "console-size",
    at: new Date().toISOString(),
    firstLoad: { parts, bytes: total, gzipBytes: gzip, budgetBytes: FIRST_LOAD_BUDGET_BYTES },
    sdkOnDemand: sdk,
  };
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  for (const p of parts) console.log(`${p.path.padEnd(22)} ${kb(p.bytes).padStart(10)} (gzip ${kb(p.gzipBytes)})`);
  console.log(`first load: ${kb(total)} raw, ${kb(gzip)} gzip; budget ${kb(FIRST_LOAD_BUDGET_BYTES)}`);
  console.log(`SDK (loaded by "Try it" only): ${kb(sdk.bytes)} raw, ${kb(sdk.gzipBytes)} gzip`);
  mkdirSync(join(DEFAULT_RESULTS_DIR, "latest"), { recursive: true });
  const json = JSON.stringify(result, null, 2) + "\n";
  writeFileSync(join(DEFAULT_RESULTS_DIR, `console-size-${fileStamp(new Date())}.json`), json);
  writeFileSync(join(DEFAULT_RESULTS_DIR, "latest", "console-size.json"), json);
  if (total > FIRST_LOAD_BUDGET_BYTES) process.exitCode = 1;
} finally {
  await server.stop();
}
