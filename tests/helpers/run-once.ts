// Runs the built binary to completion (for start-up refusals): exit code and output, bounded.

import { BINARY } from "./server.ts";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Non-empty stderr lines. */
  lines: string[];
}

export async function runOnce(args: string[], timeoutMs = 10_000): Promise<RunResult> {
  const proc = Bun.spawn([BINARY, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr, lines: stderr.split("\n").filter((l) => l.trim() !== "") };
}
