// Shapes shared by the probe (I/O) and the plan (pure). Kept in one place so the plan and
// its tests never import the I/O module.

/** A probed number together with where it came from, so the plan can explain itself. */
export interface Sourced<T> {
  value: T;
  /** e.g. "/proc/meminfo MemTotal", "cgroup v2 memory.max", "default (probe failed)". */
  source: string;
}

export interface Probe {
  platform: string;
  memory: {
    /** Effective memory: host total, lowered by a cgroup limit when one is smaller. */
    totalBytes: Sourced<number>;
    /** Memory the process could still get now (host MemAvailable, capped by cgroup headroom). */
    availableBytes: Sourced<number>;
  };
  cpus: {
    /** CPUs the OS reports (navigator.hardwareConcurrency or os.cpus()). */
    count: Sourced<number>;
    /** cgroup CPU quota in CPUs (e.g. 1.5), or null when unlimited / not found. */
    quota: Sourced<number | null>;
    /** min(count, ceil(quota)); never below 1. */
    effective: Sourced<number>;
  };
  /** RLIMIT_NOFILE. Infinite hard limits are already clamped to the kernel ceiling. */
  noFile: {
    soft: Sourced<number>;
    hard: Sourced<number>;
  };
  /** Read-only kernel settings; null when not available (non-Linux, unreadable). */
  sysctl: {
    somaxconn: Sourced<number | null>;
    ipLocalPortRange: Sourced<[number, number] | null>;
    fileMax: Sourced<number | null>;
    nrOpen: Sourced<number | null>;
  };
  /** One line per probe that failed: what failed and which default replaced it. */
  notes: string[];
}
