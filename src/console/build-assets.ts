// Build-time only (run by build.ts under Bun): bundles the browser SDK and the console page into
// files under dist/ and returns them as an asset table that build.ts embeds into the binary.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Asset } from "../gateway/assets.ts";

type AssetTable = Record<string, Asset>;

const JS = "text/javascript; charset=utf-8";
const HTML = "text/html; charset=utf-8";

async function bundle(entry: string, outdir: string, name: string): Promise<string> {
  const r = await Bun.build({
    entrypoints: [entry],
    target: "browser",
    format: "esm",
    minify: true,
    outdir,
    naming: name,
  });
  if (!r.success) {
    for (const log of r.logs) console.error(log);
    throw new Error(`bundling ${entry} failed`);
  }
  return readFileSync(join(outdir, name), "utf8");
}

/** Every .d.ts file under dir, recursively. */
function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".d.ts")).map((f) =>
    join(dir, f)
  );
}

/**
 * dist/sdk/iris-client.js (ESM for browsers, Bun and Node 22+) and its types: tsc emits the
 * declarations, whose `.ts` import specifiers are rewritten to `.js` so any consumer resolves them.
 */
export async function buildSdk(outdir: string): Promise<AssetTable> {
  const js = await bundle("src/client/index.ts", outdir, "iris-client.js");
  const tsc = Bun.spawnSync([process.execPath, "node_modules/typescript/lib/tsc.js", "-p", "tsconfig.sdk.json"]);
  if (tsc.exitCode !== 0) throw new Error(`SDK declarations failed:\n${tsc.stdout}${tsc.stderr}`);
  for (const f of declarationFiles(join(outdir, "types"))) {
    writeFileSync(f, readFileSync(f, "utf8").replace(/(from\s+"\.{1,2}\/[^"]*)\.ts"/g, '$1.js"'));
  }
  writeFileSync(join(outdir, "iris-client.d.ts"), 'export * from "./types/client/index.js";\n');
  console.log(`built ${outdir}/iris-client.js (${(js.length / 1024).toFixed(1)} KiB) + .d.ts`);
  return { "/sdk/iris-client.js": { type: JS, body: js } };
}

/** The console: one HTML page with its CSS inline (uPlot's included) and one bundled script. */
export async function buildConsole(outdir: string): Promise<AssetTable> {
  const js = await bundle("src/console/page/app.ts", outdir, "app.js");
  const css = readFileSync("node_modules/uplot/dist/uPlot.min.css", "utf8") +
    readFileSync("src/console/page/style.css", "utf8");
  const html = readFileSync("src/console/page/index.html", "utf8").replace("/*STYLE*/", () => css);
  writeFileSync(join(outdir, "index.html"), html);
  console.log(
    `built ${outdir}/ (html ${(html.length / 1024).toFixed(1)} KiB, js ${(js.length / 1024).toFixed(1)} KiB)`,
  );
  return { "/console": { type: HTML, body: html }, "/console/app.js": { type: JS, body: js } };
}
