// Busy-loop child processes, one per core by default, competing with the server for CPU. Each one
// also ends itself after `maxSeconds`, so even a runner killed with SIGKILL leaves nothing spinning.

import type { Subprocess } from "bun";
import { availableParallelism } from "node:os";
import type { Fault } from "./fault.ts";

export class CpuHog implements Fault {
  readonly name = "cpu-hog";
  private procs: Subprocess[] = [];

  constructor(private readonly maxSeconds: number, private readonly count = availableParallelism()) {}

  start(): void {
    if (this.procs.length) return;
    const ms = Math.ceil(this.maxSeconds * 1000);
    for (let i = 0; i < this.count; i++) {
      this.procs.push(
        Bun.spawn(
          [process.execPath, "-e", `const end = Date.now() + ${ms}; let x = 0; while (Date.now() < end) x++;`],
          {
            stdin: "ignore",
            stdout: "ignore",
            stderr: "ignore",
          },
        ),
      );
    }
  }

  /** Pids of the hogs (a scenario can check they really run). */
  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  async stop(): Promise<void> {
    const procs = this.procs;
    this.procs = [];
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  }

  report(): Record<string, number> {
    return { cpu_hogs: this.count };
  }
}
