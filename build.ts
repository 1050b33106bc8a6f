// Builds dist/iris: one self-contained executable (Bun runtime + code + worker entry points), plus
// the browser assets it embeds: the SDK (dist/sdk/iris-client.js + .d.ts) and the console page.
export {};
// Usage: bun run build.ts [--outfile path]

import { buildConsole, buildSdk } from "./src/console/build-assets.ts";

const outIdx = process.argv.indexOf("--outfile");
const outfile = outIdx > 0 ? process.argv[outIdx + 1]! : "dist/iris";

const t0 = performance.now();
const assets = { ...(await buildSdk("dist/sdk")), ...(await buildConsole("dist/console")) };
const result = await Bun.build({
  // Workers are separate entry points so `new Worker(new URL(...))` resolves inside the binary.
  entrypoints: [
    "src/main.ts",
    "src/host/shard-worker.ts",
    "src/host/writer-worker.ts",
    "src/host/checkpoint-worker.ts",
  ],
  compile: { outfile },
  // Keep identifiers so stack traces in logs stay readable without a sourcemap beside the binary.
  minify: { whitespace: true, syntax: true, identifiers: false },
  // The SDK and console files travel inside the binary (see src/gateway/assets.ts).
  define: { IRIS_EMBEDDED_ASSETS: JSON.stringify(assets) },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
const size = Bun.file(outfile).size;
console.log(`built ${outfile} (${(size / 1048576).toFixed(1)} MiB) in ${Math.round(performance.now() - t0)} ms`);
