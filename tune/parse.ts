// Pure parsers for the text the kernel hands us. Every parser returns null on malformed input
// instead of throwing, so the probe can record a note and fall back to a default.

/** Limits at or above this are "no limit" sentinels (cgroup v1 uses ~2^63 rounded to a page). */
export const UNLIMITED_THRESHOLD = 2 ** 60;

/** A whole, non-negative decimal number and nothing else (surrounding whitespace allowed). */
export function parseNonNegativeInt(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : null;
}

export interface Meminfo {
  totalBytes: number | null;
  availableBytes: number | null;
}

/** /proc/meminfo: "MemTotal:  24684096 kB". Missing or garbled keys come back as null. */
export function parseMeminfo(text: string): Meminfo {
  const kib = (key: string): number | null => {
    const match = new RegExp(`^${key}:\\s+(\\d+)\\s*kB\\s*$`, "m").exec(text);
    if (!match?.[1]) return null;
    const n = Number(match[1]);
    return n > 0 ? n * 1024 : null;
  };
  return { totalBytes: kib("MemTotal"), availableBytes: kib("MemAvailable") };
}

/**
 * cgroup memory limit, v2 memory.max ("max" or bytes) or v1 memory.limit_in_bytes (bytes,
 * with a huge number meaning unlimited). Returns bytes, "max" for no limit, null if garbled.
 */
export function parseCgroupMemoryMax(text: string): number | "max" | null {
  const trimmed = text.trim();
  if (trimmed === "max") return "max";
  const n = parseNonNegativeInt(trimmed);
  if (n === null || n === 0) return null;
  return n >= UNLIMITED_THRESHOLD ? "max" : n;
}

/**
 * cgroup v2 cpu.max: "<quota> <period>" or "max <period>". Returns the quota in CPUs
 * (150000/100000 → 1.5), "max" for no quota, null if garbled.
 */
export function parseCgroupCpuMax(text: string): number | "max" | null {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) return null;
  const [quotaText, periodText] = parts as [string, string];
  const period = parseNonNegativeInt(periodText);
  if (period === null || period === 0) return null;
  if (quotaText === "max") return "max";
  const quota = parseNonNegativeInt(quotaText);
  if (quota === null || quota === 0) return null;
  return quota / period;
}

/** cgroup v1 cpu.cfs_quota_us (-1 = no quota) and cpu.cfs_period_us. Same result as above. */
export function parseCfsQuota(quotaText: string, periodText: string): number | "max" | null {
  const quotaTrimmed = quotaText.trim();
  if (quotaTrimmed === "-1") return "max";
  const quota = parseNonNegativeInt(quotaTrimmed);
  const period = parseNonNegativeInt(periodText);
  if (quota === null || quota === 0 || period === null || period === 0) return null;
  return quota / period;
}

export interface Limits {
  /** Infinity when the kernel says "unlimited". */
  soft: number;
  hard: number;
}

/** /proc/self/limits, the "Max open files  <soft>  <hard>  files" row. */
export function parseProcLimits(text: string): Limits | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)\s+files\s*$/m.exec(text);
  if (!match?.[1] || !match[2]) return null;
  const value = (word: string): number | null => word === "unlimited" ? Infinity : parseNonNegativeInt(word);
  const soft = value(match[1]);
  const hard = value(match[2]);
  if (soft === null || hard === null || soft > hard) return null;
  return { soft, hard };
}

/** /proc/sys/net/ipv4/ip_local_port_range: "32768\t60999". */
export function parsePortRange(text: string): [number, number] | null {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) return null;
  const low = parseNonNegativeInt(parts[0] ?? "");
  const high = parseNonNegativeInt(parts[1] ?? "");
  if (low === null || high === null || low > high || high > 65535) return null;
  return [low, high];
}

export interface SelfCgroup {
  /** Path of the unified (v2) hierarchy entry "0::<path>", or null. */
  v2: string | null;
  /** Path within the v1 hierarchy that has the memory controller, or null. */
  v1Memory: string | null;
  /** Path within the v1 hierarchy that has the cpu controller, or null. */
  v1Cpu: string | null;
}

/** /proc/self/cgroup: lines "<id>:<controllers>:<path>". */
export function parseSelfCgroup(text: string): SelfCgroup {
  const result: SelfCgroup = { v2: null, v1Memory: null, v1Cpu: null };
  for (const line of text.split("\n")) {
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, controllers = "", path = "/"] = match;
    if (id === "0" && controllers === "") result.v2 = path;
    const names = controllers.split(",");
    if (names.includes("memory")) result.v1Memory = path;
    if (names.includes("cpu")) result.v1Cpu = path;
  }
  return result;
}

/**
 * Directories to check for a limit, deepest first: the process's own cgroup and each
 * ancestor up to the mount root. A limit anywhere on that chain applies to us.
 */
export function cgroupDirsToRoot(mountRoot: string, ownPath: string | null): string[] {
  const dirs: string[] = [];
  const segments = (ownPath ?? "/").split("/").filter((s) => s.length > 0 && s !== "..");
  for (let depth = segments.length; depth > 0; depth--) {
    dirs.push(`${mountRoot}/${segments.slice(0, depth).join("/")}`);
  }
  dirs.push(mountRoot);
  return dirs;
}

/** CPUs we may actually use: the count, lowered by a quota rounded up (1.5 → 2). */
export function effectiveCpus(count: number, quota: number | null): number {
  const fromCount = Math.max(1, Math.floor(count));
  if (quota === null || !(quota > 0)) return fromCount;
  return Math.max(1, Math.min(fromCount, Math.ceil(quota)));
}
