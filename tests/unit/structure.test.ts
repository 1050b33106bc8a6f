// Structural rules of the source tree, checked from the files themselves:
// - layers point one way: no file in src/ imports from a layer above its own (order in
//   docs/ARCHITECTURE.md, "Layers");
// - no function in src/ or tune/ is 60 lines or longer.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "../..");

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Lowest first. A file may import from its own layer or any layer below it. */
export const LAYERS: [string, string[]][] = [
  ["base", ["version.ts", "limits.ts", "assert.ts", "control.ts", "observe/", "config/", "protocol/", "auth/"]],
  ["router", ["router/"]],
  ["store", ["store/"]],
  ["gateway", ["gateway/"]],
  ["cluster", ["cluster/"]],
  ["host", ["host/"]],
  ["control", ["chaos/", "supervisor.ts", "main.ts", "ops/", "console/"]],
  ["client", ["client/"]],
];

function layerOf(srcRelative: string): number {
  for (let i = 0; i < LAYERS.length; i++) {
    for (const prefix of LAYERS[i]![1]) {
      if (prefix.endsWith("/") ? srcRelative.startsWith(prefix) : srcRelative === prefix) return i;
    }
  }
  return -1;
}

function importsOf(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  for (const st of src.statements) {
    if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier) {
      const spec = (st.moduleSpecifier as ts.StringLiteral).text;
      if (spec.startsWith(".")) out.push(spec);
    }
  }
  return out;
}

describe("layers", () => {
  const srcDir = join(ROOT, "src");
  test("every file in src/ belongs to a layer", () => {
    const unplaced = files(srcDir).map((f) => relative(srcDir, f)).filter((f) => layerOf(f) < 0);
    expect(unplaced).toEqual([]);
  });
  test("no import points up a layer", () => {
    const violations: string[] = [];
    for (const f of files(srcDir)) {
      const from = relative(srcDir, f);
      const client = layerOf(from) === LAYERS.findIndex(([n]) => n === "client");
      for (const spec of importsOf(f)) {
        const target = relative(srcDir, resolve(dirname(f), spec));
        if (target.startsWith("..")) {
          // Outside src/: only the tune/ planner, and only from the control layer.
          if (!(target.startsWith("../tune/") && layerOf(from) >= LAYERS.findIndex(([n]) => n === "control"))) {
            if (!client) violations.push(`${from} -> ${target}`);
          }
          continue;
        }
        const lt = layerOf(target);
        // The SDK runs in browsers: it may use only the protocol codecs (base layer).
        if (client ? lt !== 0 && lt !== layerOf(from) : lt > layerOf(from)) violations.push(`${from} -> ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });
});

/** Lines of every function-like node longer than `max`, as "file:line name (n lines)". */
function longFunctions(dir: string, max: number): string[] {
  const out: string[] = [];
  for (const f of files(dir)) {
    const src = ts.createSourceFile(f, readFileSync(f, "utf8"), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node) => {
      if (ts.isFunctionLike(n) && "body" in n && n.body) {
        const start = src.getLineAndCharacterOfPosition(n.getStart(src)).line;
        const end = src.getLineAndCharacterOfPosition(n.getEnd()).line;
        const lines = end - start + 1;
        if (lines >= max) {
          const name = (n as ts.FunctionDeclaration).name?.getText(src) ?? "(anonymous)";
          out.push(`${relative(ROOT, f)}:${start + 1} ${name} (${lines} lines)`);
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(src);
  }
  return out;
}

describe("function length", () => {
  test("no function in src/ or tune/ reaches 60 lines", () => {
    expect([...longFunctions(join(ROOT, "src"), 60), ...longFunctions(join(ROOT, "tune"), 60)]).toEqual([]);
  });
});
