// Describes the machine a result was measured on, so figures are never read without it.

import { readFileSync, statSync } from "node:fs";
import os from "node:os";
import { clockTicks } from "./procstat.ts";
import { DEFAULT_BINARY, irisVersion } from "./server.ts";

export interface Machine {
  cpus: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  os: string;
  bunVersion: string;
  irisVersion: string;
  /** The binary measured (others rebuild it; size and mtime tell builds apart). */
  irisBinary: { path: string; bytes: number; modified: string } | null;
  clkTck: number;
  nofile: string;
  /** Always true here: the load generator and the server run on the same cores. */
  sharedCores: true;
  note: string;
}

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** "model name" from /proc/cpuinfo (first CPU). Pure. */
export function cpuModelFrom(cpuinfo: string): string {
  return cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
}

/** MemTotal from /proc/meminfo in GiB. Pure. */
export function memTotalGiBFrom(meminfo: string): number {
  const kb = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  return Math.round((kb / 1048576) * 10) / 10;
}

function binaryInfo(path: string): Machine["irisBinary"] {
  try {
    const st = statSync(path);
    return { path, bytes: st.size, modified: st.mtime.toISOString() };
  } catch {
    return null;
  }
}

export function describeMachine(binary?: string): Machine {
  const cpus = navigator.hardwareConcurrency || os.cpus().length;
  const limits = read("/proc/self/limits").match(/^Max open files\s+(\S+)\s+(\S+)/m);
  return {
    cpus,
    cpuModel: cpuModelFrom(read("/proc/cpuinfo")) || os.cpus()[0]?.model || "unknown",
    memTotalGiB: memTotalGiBFrom(read("/proc/meminfo")) || Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: `${os.type()} ${os.arch()}`,
    bunVersion: Bun.version,
    irisVersion: irisVersion(binary),
    irisBinary: binaryInfo(binary ?? DEFAULT_BINARY),
    clkTck: clockTicks(),
    nofile: limits ? `soft ${limits[1]}, hard ${limits[2]}` : "unknown",
    sharedCores: true,
    note: `load generator and server share the same ${cpus} cores over loopback`,
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpus} CPUs (${m.cpuModel}), ${m.memTotalGiB} GiB RAM, Linux ${m.kernel}, Bun ${m.bunVersion}, ` +
    `Iris ${m.irisVersion}; ${m.note}`;
}
