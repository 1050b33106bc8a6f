import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { formatPlanTable, planToJson } from "../../tune/format.ts";
import { effectiveCpus } from "../../tune/parse.ts";
import {
  ALLOCATOR_HOLES_ENV_VAR,
  ALLOCATOR_HOLES_INTERVAL_ENV_VAR,
  HEAP_ENV_VAR,
  KEPT_HOLES_BYTES_PER_CONN,
  MAX_SHARDS,
  PER_CONN_BYTES,
  plan,
  RESERVE_FDS,
  runtimeEnvOf,
  SAFETY_FACTOR,
  startEnvOf,
  STORE_COMMIT_ROWS,
  WARM_UP_ENV_VAR,
} from "../../tune/plan.ts";
import type { Probe } from "../../tune/types.ts";
import { defaultSettings } from "../../src/config/schema.ts";
import { GiB, MiB } from "../../tune/units.ts";

interface Shape {
  cpus: number;
  memoryBytes: number;
  nofileSoft?: number;
  nofileHard: number;
  quota?: number | null;
  memorySource?: string;
  platform?: string;
  somaxconn?: number | null;
  portRange?: [number, number] | null;
  fileMax?: number | null;
  nrOpen?: number | null;
  notes?: string[];
}

/** A literal Probe for a machine shape; sources say "test" so nothing hides a real read. */
function machine(shape: Shape): Probe {
  const quota = shape.quota ?? null;
  const soft = shape.nofileSoft ?? shape.nofileHard;
  return {
    platform: shape.platform ?? "linux",
    memory: {
      totalBytes: { value: shape.memoryBytes, source: shape.memorySource ?? "test meminfo" },
      availableBytes: { value: Math.floor(shape.memoryBytes * 0.9), source: "test meminfo" },
    },
    cpus: {
      count: { value: shape.cpus, source: "test cpus" },
      quota: { value: quota, source: quota === null ? "none" : "test cpu.max" },
      effective: { value: effectiveCpus(shape.cpus, quota), source: "test" },
    },
    noFile: {
      soft: { value: soft, source: "test getrlimit" },
      hard: { value: shape.nofileHard, source: "test getrlimit" },
    },
    sysctl: {
      somaxconn: { value: shape.somaxconn === undefined ? 4096 : shape.somaxconn, source: "t" },
      ipLocalPortRange: {
        value: shape.portRange === undefined ? [1024, 65535] : shape.portRange,
        source: "t",
      },
      fileMax: { value: shape.fileMax === undefined ? 9_223_372 : shape.fileMax, source: "t" },
      nrOpen: { value: shape.nrOpen === undefined ? 1_048_576 : shape.nrOpen, source: "t" },
    },
    notes: shape.notes ?? [],
  };
}

/** The memory cap computed independently of plan.ts, from the documented formula. */
function memoryCap(memoryBytes: number, perConn = PER_CONN_BYTES): number {
  const budget = Math.max(0, Math.floor(memoryBytes * 0.7) - 128 * MiB);
  return Math.floor(budget / (perConn * SAFETY_FACTOR));
}

const hasUlimit = (advice: string[]): boolean => advice.some((a) => a.startsWith("ulimit -n "));

const SHAPES: Record<string, Shape> = {
  "1 core / 512 MiB container (cgroup-limited)": {
    cpus: 1,
    memoryBytes: 512 * MiB,
    nofileHard: 1_048_576,
    memorySource: "cgroup v2 memory.max (/sys/fs/cgroup)",
  },
  "2 cores / 24 GiB / nofile 20000": { cpus: 2, memoryBytes: 24 * GiB, nofileHard: 20_000 },
  "4 cores / 8 GiB / nofile 1024": { cpus: 4, memoryBytes: 8 * GiB, nofileHard: 1024 },
  "8 cores / 16 GiB / nofile soft 1024 hard 524288": {
    cpus: 8,
    memoryBytes: 16 * GiB,
    nofileSoft: 1024,
    nofileHard: 524_288,
  },
  "16 cores / 32 GiB / nofile 1M": { cpus: 16, memoryBytes: 32 * GiB, nofileHard: 1_000_000 },
  "32 cores / 64 GiB / nofile 16M": {
    cpus: 32,
    memoryBytes: 64 * GiB,
    nofileHard: 16_777_216,
    nrOpen: 16_777_216,
  },
  "64 cores / 256 GiB / nofile 1048576": {
    cpus: 64,
    memoryBytes: 256 * GiB,
    nofileHard: 1_048_576,
  },
  "32-core host with cgroup cpu quota 1.5": {
    cpus: 32,
    quota: 1.5,
    memoryBytes: 64 * GiB,
    nofileHard: 1_048_576,
  },
  "128-core host": { cpus: 128, memoryBytes: 512 * GiB, nofileHard: 1_048_576 },
};

describe("plan: invariants on every machine shape", () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    test(name, () => {
      const p = machine(shape);
      const result = plan(p);
      const total = p.memory.totalBytes.value;

      // Watermarks ordered spill < refuse < total memory.
      expect(result.spillBytes).toBeLessThan(result.refuseBytes);
      expect(result.refuseBytes).toBeLessThan(total);

      // Shards: at least one, never more than usable CPUs or the hard cap.
      expect(result.shards).toBeGreaterThanOrEqual(1);
      expect(result.shards).toBeLessThanOrEqual(p.cpus.effective.value);
      expect(result.shards).toBeLessThanOrEqual(MAX_SHARDS);

      // Connections: the tighter cap, and the cap reported is the one that binds.
      const fdCap = shape.nofileHard - RESERVE_FDS;
      expect(result.memoryCapConnections).toBe(memoryCap(total));
      expect(result.fdCapConnections).toBe(fdCap);
      expect(result.maxConnections).toBe(Math.min(memoryCap(total), fdCap));
      expect(result.connectionCap).toBe(fdCap < memoryCap(total) ? "fds" : "memory");
      expect(result.noFileTarget).toBe(shape.nofileHard);
      // ulimit advice exactly when fds, not memory, are what binds.
      expect(hasUlimit(result.osAdvice)).toBe(result.connectionCap === "fds");

      // Store batch the same everywhere; flush interval and heap within their documented ranges.
      expect(result.store.maxRows).toBe(STORE_COMMIT_ROWS);
      expect(result.store.flushMs).toBeGreaterThanOrEqual(2);
      expect(result.store.flushMs).toBeLessThanOrEqual(5);
      expect(result.heapMB * MiB).toBeLessThanOrEqual(total);
      expect(result.heapEnv[HEAP_ENV_VAR]).toBe(String(result.heapMB * MiB));

      // Every decision has a printable row with a reason.
      const settings = result.rows.map((r) => r.setting);
      for (const s of ["maxConnections", "shards", "spillBytes", "refuseBytes", HEAP_ENV_VAR]) {
        expect(settings).toContain(s);
      }
      for (const row of result.rows) expect(row.why.length).toBeGreaterThan(0);
    });
  }
});

describe("plan: specific shapes", () => {
  test("1 core / 512 MiB container: memory binds, one shard, the longest flush wait", () => {
    const result = plan(machine(SHAPES["1 core / 512 MiB container (cgroup-limited)"]!));
    expect(result.connectionCap).toBe("memory");
    expect(result.maxConnections).toBe(26_214); // (358.4 MiB - 128 MiB) / 9 KiB
    expect(result.shards).toBe(1);
    expect(result.store).toEqual({ maxRows: 1024, flushMs: 5 });
    expect(result.heapMB).toBe(384);
    expect(result.spillBytes).toBe(Math.floor(512 * MiB * 0.6));
    expect(result.refuseBytes).toBe(Math.floor(512 * MiB * 0.8));
    expect(hasUlimit(result.osAdvice)).toBe(false);
    const memoryFact = result.facts.find((f) => f.name === "memory");
    expect(memoryFact?.source).toContain("cgroup v2 memory.max");
  });

  test("2 cores / 24 GiB / nofile 20000 (this machine): fds bind at 19904", () => {
    const result = plan(machine(SHAPES["2 cores / 24 GiB / nofile 20000"]!));
    expect(result.connectionCap).toBe("fds");
    expect(result.maxConnections).toBe(19_904);
    expect(result.shards).toBe(1);
    expect(result.store).toEqual({ maxRows: 1024, flushMs: 4 });
    const needed = memoryCap(24 * GiB) + RESERVE_FDS;
    expect(result.osAdvice).toContain(`sysctl -w fs.nr_open=${needed}`);
    expect(result.osAdvice.some((a) => a.startsWith(`ulimit -n ${needed} `))).toBe(true);
  });

  test("4 cores / 8 GiB / nofile 1024: fds bind hard, a shorter flush wait", () => {
    const result = plan(machine(SHAPES["4 cores / 8 GiB / nofile 1024"]!));
    expect(result.maxConnections).toBe(1024 - RESERVE_FDS);
    expect(result.connectionCap).toBe("fds");
    expect(result.store).toEqual({ maxRows: 1024, flushMs: 3 });
    expect(hasUlimit(result.osAdvice)).toBe(true);
  });

  test("the planned commit size is the server's own --batch-rows default", () => {
    expect(plan(machine(SHAPES["2 cores / 24 GiB / nofile 20000"]!)).store.maxRows).toBe(defaultSettings.batchRows);
  });

  test("soft below hard: the plan targets the hard limit (raised at start)", () => {
    const result = plan(machine(SHAPES["8 cores / 16 GiB / nofile soft 1024 hard 524288"]!));
    expect(result.noFileTarget).toBe(524_288);
    expect(result.maxConnections).toBe(524_288 - RESERVE_FDS);
    expect(result.store.flushMs).toBe(2);
  });

  test("a larger per-connection cost makes memory the binding cap", () => {
    const shape = SHAPES["8 cores / 16 GiB / nofile soft 1024 hard 524288"]!;
    const result = plan(machine(shape), { perConnBytes: 64 * 1024 });
    expect(result.connectionCap).toBe("memory");
    expect(result.maxConnections).toBe(memoryCap(16 * GiB, 64 * 1024));
    expect(result.maxConnections).toBeLessThan(524_288 - RESERVE_FDS);
    expect(hasUlimit(result.osAdvice)).toBe(false);
    const row = result.rows.find((r) => r.setting === "maxConnections");
    expect(row?.why).toContain("perConnBytes: explicit flag");
    expect(result.inputs.perConnBytes).toBe(64 * 1024);
  });

  test("32 cores / 64 GiB with nofile 16M: memory binds, no ulimit advice", () => {
    const result = plan(machine(SHAPES["32 cores / 64 GiB / nofile 16M"]!));
    expect(result.connectionCap).toBe("memory");
    expect(result.shards).toBe(31);
    expect(hasUlimit(result.osAdvice)).toBe(false);
  });

  test("64 cores / 256 GiB / nofile 1048576: 63 shards, fds bind, advice to raise", () => {
    const result = plan(machine(SHAPES["64 cores / 256 GiB / nofile 1048576"]!));
    expect(result.shards).toBe(63);
    expect(result.connectionCap).toBe("fds");
    expect(result.maxConnections).toBe(1_048_576 - RESERVE_FDS);
    expect(hasUlimit(result.osAdvice)).toBe(true);
    expect(result.osAdvice.some((a) => a.startsWith("sysctl -w fs.nr_open="))).toBe(true);
  });

  test("cgroup cpu quota 1.5 on a 32-core host: 1 shard, not 31", () => {
    const p = machine(SHAPES["32-core host with cgroup cpu quota 1.5"]!);
    expect(p.cpus.effective.value).toBe(2);
    const result = plan(p);
    expect(result.shards).toBe(1);
    expect(result.store.flushMs).toBe(4);
  });

  test("128-core host: shards clamped to 64", () => {
    expect(plan(machine(SHAPES["128-core host"]!)).shards).toBe(MAX_SHARDS);
  });

  test("probe failures: notes carried through, defaults give a usable plan", () => {
    const p = machine({
      cpus: 1,
      memoryBytes: 512 * MiB,
      nofileHard: 1024,
      memorySource: "default (probe failed)",
      somaxconn: null,
      portRange: null,
      fileMax: null,
      nrOpen: null,
      notes: [
        "/proc/meminfo MemTotal unreadable; trying os.totalmem()",
        "open files limit unknown; default soft = hard = 1024",
      ],
    });
    const result = plan(p);
    expect(result.notes).toEqual(expect.arrayContaining(p.notes));
    expect(result.maxConnections).toBe(1024 - RESERVE_FDS);
    expect(result.shards).toBe(1);
    // Unknown sysctls produce no sysctl advice; the fd limit still produces ulimit advice.
    expect(result.osAdvice.some((a) => a.startsWith("sysctl"))).toBe(false);
    expect(hasUlimit(result.osAdvice)).toBe(true);
    expect(formatPlanTable(result)).toContain("open files limit unknown");
  });

  test("a machine too small for the model still gets one connection and a note", () => {
    const result = plan(machine({ cpus: 1, memoryBytes: 128 * MiB, nofileHard: 1024 }));
    expect(result.maxConnections).toBe(1);
    expect(result.notes.some((n) => n.includes("below the minimum"))).toBe(true);
    expect(result.heapMB).toBe(128); // floor of MIN_HEAP_MB, never above memory
  });
});

describe("plan: explicit overrides win", () => {
  const p = machine(SHAPES["2 cores / 24 GiB / nofile 20000"]!);

  test("maxConnections 500 from a flag", () => {
    const result = plan(p, { maxConnections: 500 });
    expect(result.maxConnections).toBe(500);
    expect(result.connectionCap).toBe("explicit");
    expect(result.rows.find((r) => r.setting === "maxConnections")?.why).toBe("explicit flag");
    expect(hasUlimit(result.osAdvice)).toBe(false); // 500 fits in 20000 fds
  });

  test("an explicit maxConnections above the fd cap is kept, warned about, and advised", () => {
    const result = plan(p, { maxConnections: 100_000 });
    expect(result.maxConnections).toBe(100_000);
    expect(result.notes.some((n) => n.includes("exceeds the fd cap"))).toBe(true);
    expect(result.osAdvice.some((a) => a.startsWith(`ulimit -n ${100_000 + RESERVE_FDS} `)))
      .toBe(true);
  });

  test("every other decision can be overridden and is marked", () => {
    const result = plan(p, {
      shards: 8,
      spillBytes: 1 * GiB,
      refuseBytes: 2 * GiB,
      storeMaxRows: 100,
      storeFlushMs: 10,
      heapMB: 1000,
    });
    expect(result.shards).toBe(8);
    expect(result.spillBytes).toBe(1 * GiB);
    expect(result.refuseBytes).toBe(2 * GiB);
    expect(result.store).toEqual({ maxRows: 100, flushMs: 10 });
    expect(result.heapMB).toBe(1000);
    expect(result.heapEnv).toEqual({ [HEAP_ENV_VAR]: String(1000 * MiB) });
    for (const setting of ["shards", "spillBytes", "refuseBytes", "store.maxRows"]) {
      expect(result.rows.find((r) => r.setting === setting)?.why).toBe("explicit flag");
    }
    expect(result.notes.some((n) => n.includes("explicit shards 8 exceeds"))).toBe(true);
  });

  test("explicit watermarks in the wrong order are kept but warned about", () => {
    const result = plan(p, { spillBytes: 3 * GiB, refuseBytes: 2 * GiB });
    expect(result.spillBytes).toBe(3 * GiB);
    expect(result.notes.some((n) => n.includes("not below refuse"))).toBe(true);
  });

  test("undefined overrides are ignored, not treated as values", () => {
    expect(plan(p, { maxConnections: undefined })).toEqual(plan(p));
  });
});

describe("plan: kernel network advice", () => {
  test("low somaxconn and a narrow port range produce sysctl commands", () => {
    const result = plan(machine({
      cpus: 2,
      memoryBytes: 4 * GiB,
      nofileHard: 1_048_576,
      somaxconn: 128,
      portRange: [32768, 60999],
    }));
    expect(result.osAdvice).toContain("sysctl -w net.core.somaxconn=4096");
    expect(
      result.osAdvice.some((a) => a.startsWith('sysctl -w net.ipv4.ip_local_port_range="1024 65535"')),
    ).toBe(true);
  });

  test("good settings produce no network advice", () => {
    const result = plan(machine({ cpus: 2, memoryBytes: 4 * GiB, nofileHard: 1_048_576 }));
    expect(result.osAdvice).toEqual([]);
  });

  test("no Linux sysctl advice on macOS", () => {
    const result = plan(machine({
      cpus: 8,
      memoryBytes: 16 * GiB,
      nofileHard: 10_240,
      platform: "darwin",
      somaxconn: 128,
      portRange: [49152, 65535],
    }));
    expect(result.osAdvice.some((a) => a.startsWith("sysctl"))).toBe(false);
    expect(hasUlimit(result.osAdvice)).toBe(true);
  });
});

describe("plan: properties over random machines", () => {
  test("caps, ordering and bounds hold for any shape", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 512 }),
        fc.option(fc.double({ min: 0.1, max: 600, noNaN: true }), { nil: null }),
        fc.integer({ min: 64, max: 4096 }).map((mb) => mb * MiB),
        fc.integer({ min: 256, max: 16_777_216 }),
        (cpus, quota, memoryBytes, nofileHard) => {
          const p = machine({ cpus, quota, memoryBytes, nofileHard });
          const result = plan(p);
          expect(result.shards).toBeLessThanOrEqual(Math.min(cpus, MAX_SHARDS));
          expect(result.shards).toBeLessThanOrEqual(p.cpus.effective.value);
          expect(result.spillBytes).toBeLessThan(result.refuseBytes);
          expect(result.refuseBytes).toBeLessThan(memoryBytes);
          expect(result.maxConnections).toBeGreaterThanOrEqual(1);
          expect(result.maxConnections).toBeLessThanOrEqual(
            Math.max(1, Math.min(result.memoryCapConnections, result.fdCapConnections)),
          );
          expect(hasUlimit(result.osAdvice)).toBe(result.connectionCap === "fds");
          expect(Number.isInteger(Number(result.heapEnv[HEAP_ENV_VAR]))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("format", () => {
  const result = plan(machine(SHAPES["2 cores / 24 GiB / nofile 20000"]!));

  test("table lists facts, every decision and the OS advice", () => {
    const table = formatPlanTable(result);
    for (const row of result.rows) {
      expect(table).toContain(row.setting);
      expect(table).toContain(row.why);
    }
    for (const fact of result.facts) expect(table).toContain(fact.source);
    for (const command of result.osAdvice) expect(table).toContain(command);
  });

  test("table columns are aligned", () => {
    const lines = formatPlanTable(result).split("\n");
    const header = lines.find((l) => l.startsWith("setting"))!;
    const whyColumn = header.indexOf("why");
    const row = lines.find((l) => l.startsWith("maxConnections"))!;
    expect(row.slice(whyColumn)).toStartWith("min(memory cap");
  });

  test("JSON round-trips the plan", () => {
    expect(JSON.parse(planToJson(result))).toEqual(JSON.parse(JSON.stringify(result)));
    expect(JSON.parse(planToJson(result)).maxConnections).toBe(19_904);
  });
});

describe("plan: invalid overrides", () => {
  test("non-finite, negative or zero costs are ignored with a note", () => {
    const p = machine({ cpus: 2, memoryBytes: 24 * GiB, nofileHard: 20_000 });
    const result = plan(p, { perConnBytes: 0, safetyFactor: -1, maxConnections: NaN });
    expect(result.inputs.perConnBytes).toBe(PER_CONN_BYTES);
    expect(result.inputs.safetyFactor).toBe(SAFETY_FACTOR);
    expect(result.maxConnections).toBe(plan(p).maxConnections);
    expect(result.connectionCap).toBe("fds");
    expect(result.notes.filter((n) => n.startsWith("ignored invalid"))).toHaveLength(3);
  });
});

describe("allocator setting", () => {
  const row = (p: ReturnType<typeof plan>) => p.rows.find((r) => r.setting === ALLOCATOR_HOLES_ENV_VAR);

  test("keeps the allocator's holes when the connections' extra cost is small beside memory", () => {
    // 24 GiB and 20,000 fds (the project machine): 19,904 conns x 4 KiB = 78 MiB, 0.3% of memory.
    const p = plan(machine({ cpus: 2, memoryBytes: 24 * GiB, nofileHard: 20_000 }));
    expect(p.allocatorEnv).toEqual({ [ALLOCATOR_HOLES_ENV_VAR]: "0" });
    expect(row(p)?.value).toBe("0 (keep)");
  });

  test("keeps Bun's default when those connections would cost over 2% of memory", () => {
    // 1 GiB and a million fds: memory binds (~67k conns), and 67k x 4 KiB is a quarter of memory.
    const p = plan(machine({ cpus: 1, memoryBytes: 1 * GiB, nofileHard: 1_000_000 }));
    expect(p.maxConnections * KEPT_HOLES_BYTES_PER_CONN).toBeGreaterThan(0.02 * GiB);
    expect(p.allocatorEnv).toEqual({});
    expect(row(p)?.value).toBe("Bun's default");
  });

  test("the start environment carries the heap hint, and the allocator setting unless the operator set it", () => {
    const p = { heapEnv: { [HEAP_ENV_VAR]: "1024" }, allocatorEnv: { [ALLOCATOR_HOLES_ENV_VAR]: "0" } };
    expect(startEnvOf(p, {})).toEqual({ [HEAP_ENV_VAR]: "1024", [ALLOCATOR_HOLES_ENV_VAR]: "0" });
    expect(startEnvOf(p, { [ALLOCATOR_HOLES_ENV_VAR]: "1" })).toEqual({ [HEAP_ENV_VAR]: "1024" });
    expect(startEnvOf({ ...p, allocatorEnv: {} }, {})).toEqual({ [HEAP_ENV_VAR]: "1024" });
  });

  test("every start turns JSC's block warm-up off and paces the hole purge, unless the operator names them", () => {
    const pace = { [ALLOCATOR_HOLES_INTERVAL_ENV_VAR]: "1000" };
    expect(runtimeEnvOf({})).toEqual({ [WARM_UP_ENV_VAR]: "false", ...pace });
    expect(runtimeEnvOf({ [WARM_UP_ENV_VAR]: "true" })).toEqual(pace);
    expect(runtimeEnvOf({ [HEAP_ENV_VAR]: "1024" })).toEqual({ [WARM_UP_ENV_VAR]: "false", ...pace });
    expect(runtimeEnvOf({ [ALLOCATOR_HOLES_INTERVAL_ENV_VAR]: "500" })).toEqual({ [WARM_UP_ENV_VAR]: "false" });
    // An operator who chose the purge itself ("1": least memory) keeps Bun's pace with it.
    expect(runtimeEnvOf({ [ALLOCATOR_HOLES_ENV_VAR]: "1" })).toEqual({ [WARM_UP_ENV_VAR]: "false" });
  });
});
