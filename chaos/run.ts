// `bun chaos/run.ts <scenario> [--short] [--seconds N] [--binary PATH] [--key value ...]`
// Runs one chaos scenario against the real binary and prints ONE verdict line on stdout
// (progress goes to stderr). Exit code 0 on PASS, 1 on FAIL, 2 on bad usage.

import { parseOptions, UsageError } from "./lib/options.ts";
import { runScenario } from "./lib/runner.ts";
import { findScenario, scenarios } from "./scenarios/index.ts";

function usage(): string {
  const width = Math.max(...scenarios.map((s) => s.name.length));
  return [
    "usage: bun chaos/run.ts <scenario> [--short] [--seconds N] [--binary PATH] [--key value ...]",
    "",
    ...scenarios.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "--list") {
    console.error(usage());
    return argv.length === 0 ? 2 : 0;
  }
  let parsed;
  try {
    parsed = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`chaos: ${e.message}\n${usage()}`);
    return 2;
  }
  const s = findScenario(parsed.scenario);
  if (!s) {
    console.error(`chaos: unknown scenario '${parsed.scenario}'\n${usage()}`);
    return 2;
  }
  let result;
  try {
    result = await runScenario(s, parsed.opts);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`chaos: ${e.message}`);
    return 2;
  }
  console.log(result.line);
  return result.pass ? 0 : 1;
}

// Exit explicitly: a stray client handle must not keep a finished run alive.
process.exit(await main(process.argv.slice(2)));
