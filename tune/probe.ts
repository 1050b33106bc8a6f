// Hardware probe for `iris --auto-tune`: reads what the machine and its container allow.
// I/O only; all decisions live in plan.ts. Every probe that fails falls back to a stated
// default and leaves a note, so a plan is always produced and always explains itself.

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import {
  cgroupDirsToRoot,
  effectiveCpus,
  parseCfsQuota,
  parseCgroupCpuMax,
  parseCgroupMemoryMax,
  parseMeminfo,
  parseNonNegativeInt,
  parsePortRange,
  parseProcLimits,
  parseSelfCgroup,
  type SelfCgroup,
} from "./parse.ts";
import { getNoFileLimit, setNoFileSoft } from "./rlimit.ts";
import type { Probe, Sourced } from "./types.ts";

export * from "./parse.ts";
export type { Probe, Sourced } from "./types.ts";

/** Used when memory cannot be read at all: small enough to be safe on any server. */
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;
/** Used when the CPU count cannot be read: one shard is always correct, if slow. */
export const DEFAULT_CPUS = 1;
/** Used when RLIMIT_NOFILE cannot be read: the traditional Linux default soft limit. */
export const DEFAULT_NOFILE = 1024;
/** Kernel default for fs.nr_open: the most a Linux process may set RLIMIT_NOFILE to. */
export const DEFAULT_NR_OPEN = 1_048_576;
/** macOS OPEN_MAX: the usual soft ceiling when kern.maxfilesperproc cannot be read. */
export const DEFAULT_DARWIN_MAX_FILES = 10_240;

const CGROUP_ROOT = "/sys/fs/cgroup";

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}

function readTextSync(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** `sysctl -n <name>` on macOS; a few ms, only used where no file exists to read. */
function darwinSysctl(name: string): number | null {
  try {
    const result = Bun.spawnSync(["sysctl", "-n", name], { stdout: "pipe", stderr: "ignore" });
    if (!result.success) return null;
    return parseNonNegativeInt(result.stdout.toString());
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Memory

interface CgroupMemory {
  limitBytes: number;
  usageBytes: number | null;
  source: string;
}

/** The smallest memory limit on our cgroup chain (v2 first, then v1), or null if none. */
async function cgroupMemory(self: SelfCgroup, notes: string[]): Promise<CgroupMemory | null> {
  const candidates = [
    ...cgroupDirsToRoot(CGROUP_ROOT, self.v2).map((dir) => ({
      dir,
      version: "v2",
      limitFile: "memory.max",
      usageFile: "memory.current",
    })),
    ...cgroupDirsToRoot(`${CGROUP_ROOT}/memory`, self.v1Memory).map((dir) => ({
      dir,
      version: "v1",
      limitFile: "memory.limit_in_bytes",
      usageFile: "memory.usage_in_bytes",
    })),
  ];
  let best: CgroupMemory | null = null;
  for (const c of candidates) {
    const text = await readText(`${c.dir}/${c.limitFile}`);
    if (text === null) continue; // absent is normal: not every level or version exists
    const limit = parseCgroupMemoryMax(text);
    if (limit === null) {
      notes.push(`cgroup ${c.version} ${c.dir}/${c.limitFile} unparsable; ignored that level`);
      continue;
    }
    if (limit === "max" || (best && best.limitBytes <= limit)) continue;
    const usageText = await readText(`${c.dir}/${c.usageFile}`);
    best = {
      limitBytes: limit,
      usageBytes: usageText === null ? null : parseNonNegativeInt(usageText),
      source: `cgroup ${c.version} ${c.limitFile} (${c.dir})`,
    };
  }
  return best;
}

interface HostMemory {
  total: Sourced<number>;
  available: Sourced<number>;
}

async function hostMemory(notes: string[]): Promise<HostMemory> {
  let total: Sourced<number> | null = null;
  let available: Sourced<number> | null = null;

  if (process.platform === "linux") {
    const text = await readText("/proc/meminfo");
    const info = text === null ? null : parseMeminfo(text);
    if (info?.totalBytes) total = { value: info.totalBytes, source: "/proc/meminfo MemTotal" };
    else notes.push("/proc/meminfo MemTotal unreadable; trying os.totalmem()");
    if (info?.availableBytes) {
      available = { value: info.availableBytes, source: "/proc/meminfo MemAvailable" };
    } else notes.push("/proc/meminfo MemAvailable unreadable; trying os.freemem()");
  } else if (process.platform === "darwin") {
    const bytes = darwinSysctl("hw.memsize");
    if (bytes) total = { value: bytes, source: "sysctl hw.memsize" };
    else notes.push("sysctl hw.memsize failed; trying os.totalmem()");
  }

  if (!total) {
    const bytes = os.totalmem();
    if (bytes > 0) total = { value: bytes, source: "os.totalmem()" };
  }
  if (!total) {
    notes.push(`total memory unknown; default ${DEFAULT_MEMORY_BYTES} bytes (512 MiB)`);
    total = { value: DEFAULT_MEMORY_BYTES, source: "default (probe failed)" };
  }
  if (!available) {
    const bytes = os.freemem();
    available = bytes > 0
      ? { value: Math.min(bytes, total.value), source: "os.freemem()" }
      : { value: total.value, source: "default (= total memory)" };
  }
  return { total, available };
}

async function probeMemory(self: SelfCgroup | null, notes: string[]): Promise<Probe["memory"]> {
  const host = await hostMemory(notes);
  const cgroup = self ? await cgroupMemory(self, notes) : null;
  if (!cgroup || cgroup.limitBytes >= host.total.value) {
    return { totalBytes: host.total, availableBytes: host.available };
  }
  // A container limit below the host figure is what the OOM killer enforces: use it.
  const headroom = cgroup.usageBytes === null ? cgroup.limitBytes : Math.max(0, cgroup.limitBytes - cgroup.usageBytes);
  const availableFromCgroup = headroom < host.available.value;
  return {
    totalBytes: { value: cgroup.limitBytes, source: cgroup.source },
    availableBytes: availableFromCgroup ? { value: headroom, source: `${cgroup.source} minus usage` } : host.available,
  };
}

// ---------------------------------------------------------------------------------------
// CPUs

function cpuCount(notes: string[]): Sourced<number> {
  const fromNavigator = globalThis.navigator?.hardwareConcurrency;
  if (typeof fromNavigator === "number" && Number.isInteger(fromNavigator) && fromNavigator > 0) {
    return { value: fromNavigator, source: "navigator.hardwareConcurrency" };
  }
  const fromOs = os.cpus().length;
  if (fromOs > 0) return { value: fromOs, source: "os.cpus().length" };
  notes.push(`CPU count unknown; default ${DEFAULT_CPUS}`);
  return { value: DEFAULT_CPUS, source: "default (probe failed)" };
}

/** The smallest CPU quota on our cgroup chain, in CPUs; null value when unlimited. */
async function cpuQuota(self: SelfCgroup | null, notes: string[]): Promise<Sourced<number | null>> {
  let best: Sourced<number | null> = { value: null, source: "no cgroup CPU quota found" };
  if (!self) return best;
  const consider = (quota: number | "max" | null, where: string): void => {
    if (quota === null) notes.push(`${where} unparsable; ignored that level`);
    else if (quota !== "max" && (best.value === null || quota < best.value)) {
      best = { value: quota, source: where };
    }
  };
  for (const dir of cgroupDirsToRoot(CGROUP_ROOT, self.v2)) {
    const text = await readText(`${dir}/cpu.max`);
    if (text !== null) consider(parseCgroupCpuMax(text), `cgroup v2 cpu.max (${dir})`);
  }
  // v1 mounts the cpu controller as "cpu" or "cpu,cpuacct" depending on the distribution.
  for (const mount of [`${CGROUP_ROOT}/cpu`, `${CGROUP_ROOT}/cpu,cpuacct`]) {
    for (const dir of cgroupDirsToRoot(mount, self.v1Cpu)) {
      const quota = await readText(`${dir}/cpu.cfs_quota_us`);
      const period = await readText(`${dir}/cpu.cfs_period_us`);
      if (quota !== null && period !== null) {
        consider(parseCfsQuota(quota, period), `cgroup v1 cpu.cfs_quota_us/cfs_period_us (${dir})`);
      }
    }
  }
  return best;
}

async function probeCpus(self: SelfCgroup | null, notes: string[]): Promise<Probe["cpus"]> {
  const count = cpuCount(notes);
  const quota = await cpuQuota(self, notes);
  const value = effectiveCpus(count.value, quota.value);
  const quotaBinds = quota.value !== null && value < count.value;
  return {
    count,
    quota,
    effective: {
      value,
      source: quotaBinds ? `ceil(${quota.source} = ${quota.value})` : count.source,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Open files

/** What RLIMIT_NOFILE can really be set to when the hard limit says "infinite". */
function noFileCeiling(): Sourced<number> {
  if (process.platform === "darwin") {
    const max = darwinSysctl("kern.maxfilesperproc");
    return max
      ? { value: max, source: "sysctl kern.maxfilesperproc" }
      : { value: DEFAULT_DARWIN_MAX_FILES, source: "default macOS OPEN_MAX" };
  }
  const text = readTextSync("/proc/sys/fs/nr_open");
  const nrOpen = text === null ? null : parseNonNegativeInt(text);
  return nrOpen
    ? { value: nrOpen, source: "/proc/sys/fs/nr_open" }
    : { value: DEFAULT_NR_OPEN, source: "default fs.nr_open" };
}

function clampInfinite(limit: Sourced<number>): Sourced<number> {
  if (Number.isFinite(limit.value)) return limit;
  const ceiling = noFileCeiling();
  return {
    value: ceiling.value,
    source: `${limit.source}: unlimited, capped by ${ceiling.source}`,
  };
}

function probeNoFile(notes: string[]): Probe["noFile"] {
  const viaFfi = getNoFileLimit();
  if (viaFfi) {
    const source = `getrlimit(RLIMIT_NOFILE) via bun:ffi ${viaFfi.library}`;
    return {
      soft: clampInfinite({ value: viaFfi.soft, source }),
      hard: clampInfinite({ value: viaFfi.hard, source }),
    };
  }
  const text = process.platform === "linux" ? readTextSync("/proc/self/limits") : null;
  const parsed = text === null ? null : parseProcLimits(text);
  if (parsed) {
    notes.push("getrlimit via bun:ffi failed; read /proc/self/limits instead");
    const source = "/proc/self/limits Max open files";
    return {
      soft: clampInfinite({ value: parsed.soft, source }),
      hard: clampInfinite({ value: parsed.hard, source }),
    };
  }
  notes.push(`open files limit unknown; default soft = hard = ${DEFAULT_NOFILE}`);
  const fallback = { value: DEFAULT_NOFILE, source: "default (probe failed)" };
  return { soft: fallback, hard: fallback };
}

/**
 * Raise the soft open-files limit to the hard limit (an infinite hard limit is capped at
 * fs.nr_open / kern.maxfilesperproc, which is all the kernel accepts). Returns the soft
 * limit in force afterwards; when FFI is unavailable, the unchanged current soft limit.
 */
export function raiseNoFileLimit(): number {
  const current = probeNoFile([]);
  const raised = setNoFileSoft(current.hard.value);
  return raised === null ? current.soft.value : Math.min(raised, current.hard.value);
}

// ---------------------------------------------------------------------------------------
// Linux sysctls (reported, never written)

async function readSysctl<T>(
  path: string,
  parse: (text: string) => T | null,
  notes: string[],
): Promise<Sourced<T | null>> {
  if (process.platform !== "linux") {
    return { value: null, source: `not read on ${process.platform}` };
  }
  const text = await readText(path);
  const value = text === null ? null : parse(text);
  if (value === null) {
    notes.push(`${path} unreadable; treated as unknown (no advice for it)`);
    return { value: null, source: "unknown (probe failed)" };
  }
  return { value, source: path };
}

async function probeSysctl(notes: string[]): Promise<Probe["sysctl"]> {
  return {
    somaxconn: await readSysctl("/proc/sys/net/core/somaxconn", parseNonNegativeInt, notes),
    ipLocalPortRange: await readSysctl(
      "/proc/sys/net/ipv4/ip_local_port_range",
      parsePortRange,
      notes,
    ),
    fileMax: await readSysctl("/proc/sys/fs/file-max", parseNonNegativeInt, notes),
    nrOpen: await readSysctl("/proc/sys/fs/nr_open", parseNonNegativeInt, notes),
  };
}

// ---------------------------------------------------------------------------------------

/** Probe this machine. Never throws; failures become notes and defaults. */
export async function probe(): Promise<Probe> {
  const notes: string[] = [];
  let self: SelfCgroup | null = null;
  if (process.platform === "linux") {
    const text = await readText("/proc/self/cgroup");
    if (text === null) notes.push("/proc/self/cgroup unreadable; checked cgroup mount roots only");
    self = parseSelfCgroup(text ?? "");
  }
  return {
    platform: process.platform,
    memory: await probeMemory(self, notes),
    cpus: await probeCpus(self, notes),
    noFile: probeNoFile(notes),
    sysctl: await probeSysctl(notes),
    notes,
  };
}
