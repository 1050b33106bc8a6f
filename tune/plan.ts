// The auto-tune plan: a pure function from a Probe (what the machine allows) to the settings
// Iris should run with, each decision carrying the probe it used and the reason. No I/O, so
// every machine shape can be unit-tested from a literal Probe.

import type { Probe } from "./types.ts";
import { formatBytes, formatCount, MiB } from "./units.ts";

/**
 * Bytes budgeted per connection. Measured (`npm run bench -- connections`, 2 cores): an idle
 * logged-in connection costs 3.3 KB of RSS on average at 15k (2.0 KB marginal); an active one also
 * holds unacked deliveries and socket buffers, so the budget is ~1.8x the idle figure, before
 * the safety factor below.
 */
export const PER_CONN_BYTES = 6 * 1024;
/** Headroom on PER_CONN_BYTES for bursts (queued frames, TLS, fragmentation). */
export const SAFETY_FACTOR = 1.5;
/** Share of effective memory connections may use; the rest is page cache, store, spikes. */
export const MEMORY_BUDGET_FRACTION = 0.7;
/** Fixed cost of the runtime itself (JSC, code, workers) taken off the budget first. */
export const RUNTIME_RESERVE_BYTES = 128 * MiB;
/** fds not for clients: stdio, runtime internals (64) + store files and listeners (32). */
export const RESERVE_FDS = 64 + 32;
/** Router worker threads never exceed this, however many CPUs the machine has. */
export const MAX_SHARDS = 64;
/** Above this resident size, messages for slow/absent users spill to disk. */
export const SPILL_FRACTION = 0.6;
/** Above this resident size, new connections are refused with 503. */
export const REFUSE_FRACTION = 0.8;
/** JS heap sizing hint as a share of effective memory. */
export const HEAP_FRACTION = 0.75;
/** Never hint a heap smaller than this: below it JSC would collect almost continuously. */
export const MIN_HEAP_MB = 128;
/**
 * Rows at which the storage writer commits without waiting for more: the server's default too
 * (--batch-rows). Not scaled with the machine: a commit this big already spreads its fixed cost,
 * and waiting for a bigger one only holds the senders' acks (bundled offline flood, 2 cores:
 * committing at 1,024 beat waiting for 2,048 in seven of eight pairs). A batch this size is
 * ~100 KB of RAM, small on any machine Iris runs on.
 */
export const STORE_COMMIT_ROWS = 1024;
/** Listen backlog worth having for reconnect storms. */
export const SOMAXCONN_TARGET = 4096;
/** Fewer ephemeral ports than this limits a load-test client; suggest the full range. */
export const NARROW_PORT_RANGE = 50_000;
/**
 * Bun passes BUN_JSC_<option> to JavaScriptCore. forceRAMSize (bytes) makes JSC size its
 * heap growth as if the machine had that much RAM: the GC collects sooner. It is a sizing
 * hint, not a hard cap (measured: see docs/OPERATIONS.md, Auto-tune).
 */
export const HEAP_ENV_VAR = "BUN_JSC_forceRAMSize";
/**
 * Bun's mimalloc option for "hole purging": at each idle point of a thread it returns the free
 * runs inside still-used pages to the kernel, at most every 100 ms per thread. Under message load
 * those runs are reused within milliseconds, so each purge comes back as page faults, and JSC's
 * block warm-up thread re-faults what the purge took (docs/BENCHMARKS.md, "The allocator's hole
 * purging"): about a fifth of Iris's CPU per message at saturation on 2 cores. Read only at process
 * start; "0" keeps the holes resident (whole free pages are still returned).
 */
export const ALLOCATOR_HOLES_ENV_VAR = "MIMALLOC_PURGE_HOLES";
/**
 * JSC's marked-block warm-up thread (`JSCWarmUp`) faults fresh GC blocks in ahead of the JS thread;
 * with Bun's hole purging on (the default start) the purge takes them back and the warm-up faults
 * them in again, on the cores the shard and the load need. Off, the JS thread faults in only the
 * blocks it uses. Measured (docs/BENCHMARKS.md, session 20; default start, three alternating
 * pairs): +11-23% msgs/s at saturation, 14-22% less server CPU per message, the same RSS per idle
 * connection. Read only at process start, so every start applies it by re-exec (reexec.ts).
 */
export const WARM_UP_ENV_VAR = "BUN_JSC_useWarmUpMarkedBlocks";
/**
 * The hole purge's pace: at most one purge of a thread's holes per this many ms (Bun's default is
 * 100). Under message load a thread then purges once a second instead of ten times, so the runs
 * freed between messages mostly stay resident and are reused without page faults; when the server
 * goes quiet the holes still go back at the thread's next idle point. Measured (docs/BENCHMARKS.md,
 * session 21; default start, alternating pairs): 11% less server CPU per message at saturation than
 * the 100 ms default, +7% msgs/s, the same peak RSS in chaos `slow-consumer` (whose server runs at
 * its spill mark). A 2 s pace saved as much CPU but held freed memory longer: that scenario's peak
 * RSS rose ~9 MiB and crossed its 512 MiB bound in 2 of 8 runs.
 */
export const ALLOCATOR_HOLES_INTERVAL_ENV_VAR = "MIMALLOC_PURGE_HOLES_MIN_INTERVAL";
export const ALLOCATOR_HOLES_INTERVAL_MS = 1_000;
/** Runtime settings every start applies, with or without --auto-tune. */
export const RUNTIME_ENV: Readonly<Record<string, string>> = {
  [WARM_UP_ENV_VAR]: "false",
  [ALLOCATOR_HOLES_INTERVAL_ENV_VAR]: String(ALLOCATOR_HOLES_INTERVAL_MS),
};
/**
 * A runtime setting the operator's choice of another setting overrides: an operator who names the
 * hole purge itself (e.g. `MIMALLOC_PURGE_HOLES=1`, "least memory") gets Bun's pace with it.
 */
const RUNTIME_ENV_YIELDS_TO: Readonly<Record<string, readonly string[]>> = {
  [ALLOCATOR_HOLES_INTERVAL_ENV_VAR]: [ALLOCATOR_HOLES_ENV_VAR],
};
/**
 * What keeping the holes costs an idle logged-in connection, budgeted: measured 2.4-2.7 KB more RSS
 * per connection at 10k (`npm run bench -- connections`, 2 cores), rounded up.
 */
export const KEPT_HOLES_BYTES_PER_CONN = 4 * 1024;
/** Keep the holes only while that cost, at maxConnections, stays under this share of memory. */
export const KEPT_HOLES_MAX_MEMORY_SHARE = 0.02;

/** Model constants (defaults above) and explicit decisions (undefined = compute). */
export interface PlanInputs {
  perConnBytes: number;
  safetyFactor: number;
  memoryBudgetFraction: number;
  runtimeReserveBytes: number;
  reserveFds: number;
  maxConnections?: number;
  shards?: number;
  spillBytes?: number;
  refuseBytes?: number;
  storeMaxRows?: number;
  storeFlushMs?: number;
  heapMB?: number;
}

export const DEFAULT_PLAN_INPUTS: Readonly<PlanInputs> = {
  perConnBytes: PER_CONN_BYTES,
  safetyFactor: SAFETY_FACTOR,
  memoryBudgetFraction: MEMORY_BUDGET_FRACTION,
  runtimeReserveBytes: RUNTIME_RESERVE_BYTES,
  reserveFds: RESERVE_FDS,
};

export interface PlanRow {
  setting: string;
  value: string;
  /** The probed values this decision used (their sources are in Plan.facts). */
  probe: string;
  why: string;
}

/** One probed fact as the plan used it, with where it came from. */
export interface PlanFact {
  name: string;
  value: string;
  source: string;
}

export interface Plan {
  maxConnections: number;
  /** Which limit set maxConnections. */
  connectionCap: "memory" | "fds" | "explicit";
  /** Connections memory allows: floor(budget / (perConnBytes * safetyFactor)). */
  memoryCapConnections: number;
  /** Connections fds allow once soft = hard: hard - reserveFds. */
  fdCapConnections: number;
  /** Soft RLIMIT_NOFILE to reach at start (raiseNoFileLimit): the hard limit. */
  noFileTarget: number;
  shards: number;
  spillBytes: number;
  refuseBytes: number;
  store: { maxRows: number; flushMs: number };
  heapMB: number;
  /** Environment to start Bun with; JSC reads it once, at VM creation. */
  heapEnv: Record<string, string>;
  /** Allocator environment (mimalloc reads it once, at process start); empty: Bun's defaults. */
  allocatorEnv: Record<string, string>;
  /** Shell commands for OS settings the process cannot apply itself. */
  osAdvice: string[];
  /** What the probe found, printed above the decisions. */
  facts: PlanFact[];
  rows: PlanRow[];
  /** Probe notes plus warnings about the plan itself. */
  notes: string[];
  /** The model constants used, so a plan can be reproduced. */
  inputs: PlanInputs;
}

const EXPLICIT = "explicit flag";

function clamp(n: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, n));
}

/** Fewer cores → wait longer per commit, so the store thread steals less time from routers. */
export function storeFlushMsFor(cpus: number): number {
  if (cpus >= 8) return 2;
  if (cpus >= 4) return 3;
  if (cpus >= 2) return 4;
  return 5;
}

function probeFacts(p: Probe): PlanFact[] {
  const { memory, cpus, noFile, sysctl } = p;
  const facts: PlanFact[] = [
    {
      name: "memory",
      value: formatBytes(memory.totalBytes.value),
      source: memory.totalBytes.source,
    },
    {
      name: "memory available",
      value: formatBytes(memory.availableBytes.value),
      source: memory.availableBytes.source,
    },
    { name: "cpus", value: String(cpus.count.value), source: cpus.count.source },
    {
      name: "cpu quota",
      value: cpus.quota.value === null ? "none" : String(cpus.quota.value),
      source: cpus.quota.source,
    },
    { name: "cpus effective", value: String(cpus.effective.value), source: cpus.effective.source },
    { name: "nofile soft", value: formatCount(noFile.soft.value), source: noFile.soft.source },
    { name: "nofile hard", value: formatCount(noFile.hard.value), source: noFile.hard.source },
  ];
  const sysctlFact = (name: string, value: string | null, source: string): void => {
    facts.push({ name, value: value ?? "unknown", source });
  };
  sysctlFact(
    "somaxconn",
    sysctl.somaxconn.value === null ? null : String(sysctl.somaxconn.value),
    sysctl.somaxconn.source,
  );
  sysctlFact(
    "ip_local_port_range",
    sysctl.ipLocalPortRange.value?.join("-") ?? null,
    sysctl.ipLocalPortRange.source,
  );
  sysctlFact(
    "fs.file-max",
    sysctl.fileMax.value === null ? null : formatCount(sysctl.fileMax.value),
    sysctl.fileMax.source,
  );
  sysctlFact(
    "fs.nr_open",
    sysctl.nrOpen.value === null ? null : formatCount(sysctl.nrOpen.value),
    sysctl.nrOpen.source,
  );
  return facts;
}

/** What every planning step reads and appends to. */
interface PlanContext {
  p: Probe;
  inputs: PlanInputs;
  given(key: keyof PlanInputs): boolean;
  notes: string[];
  rows: PlanRow[];
  osAdvice: string[];
  memory: number;
  cpus: number;
  hard: number;
  linux: boolean;
  memoryProbe: string;
  cpuProbe: string;
  fdProbe: string;
}

export function plan(p: Probe, overrides: Partial<PlanInputs> = {}): Plan {
  const notes = [...p.notes];
  const { inputs, ignored } = readInputs(overrides, notes);
  const memory = p.memory.totalBytes.value;
  const cpus = p.cpus.effective.value;
  const hard = p.noFile.hard.value;
  const c: PlanContext = {
    p,
    inputs,
    given: (key) => overrides[key] !== undefined && !ignored.has(key),
    notes,
    rows: [],
    osAdvice: [],
    memory,
    cpus,
    hard,
    linux: p.platform === "linux",
    memoryProbe: `memory ${formatBytes(memory)}`,
    cpuProbe: `cpus ${cpus}`,
    fdProbe: `nofile hard ${formatCount(hard)}`,
  };
  const conns = planConnections(c);
  const shards = planShards(c);
  const { spillBytes, refuseBytes } = planWatermarks(c);
  const store = planStore(c);
  const { heapMB, heapEnv } = planHeap(c);
  const allocatorEnv = planAllocator(c, conns.maxConnections);
  networkAdvice(c);
  return {
    ...conns,
    noFileTarget: hard,
    shards,
    spillBytes,
    refuseBytes,
    store,
    heapMB,
    heapEnv,
    allocatorEnv,
    osAdvice: c.osAdvice,
    facts: probeFacts(p),
    rows: c.rows,
    notes,
    inputs,
  };
}

/** Overrides over the defaults; invalid ones are ignored with a note. */
function readInputs(
  overrides: Partial<PlanInputs>,
  notes: string[],
): { inputs: PlanInputs; ignored: Set<keyof PlanInputs> } {
  const inputs: PlanInputs = { ...DEFAULT_PLAN_INPUTS };
  const ignored = new Set<keyof PlanInputs>();
  for (const [key, value] of Object.entries(overrides) as [keyof PlanInputs, number][]) {
    if (value === undefined) continue; // undefined means "not given", not "unset"
    // A zero or negative cost would divide by zero or invert a formula: refuse, keep default.
    const mustBePositive = key === "perConnBytes" || key === "safetyFactor" ||
      key === "memoryBudgetFraction";
    if (!Number.isFinite(value) || value < 0 || (mustBePositive && value === 0)) {
      notes.push(`ignored invalid ${key}=${value}; kept the computed/default value`);
      ignored.add(key);
      continue;
    }
    inputs[key] = value;
  }
  return { inputs, ignored };
}

type ConnectionPlan = Pick<Plan, "maxConnections" | "connectionCap" | "memoryCapConnections" | "fdCapConnections">;

/** Connections: the tighter of what memory and file descriptors allow. */
function planConnections(c: PlanContext): ConnectionPlan {
  const { inputs, notes } = c;
  const budget = Math.max(0, Math.floor(c.memory * inputs.memoryBudgetFraction) - inputs.runtimeReserveBytes);
  const memoryCapConnections = Math.floor(budget / (inputs.perConnBytes * inputs.safetyFactor));
  const fdCapConnections = Math.max(0, c.hard - inputs.reserveFds);
  const modelFlags = ([
    "perConnBytes",
    "safetyFactor",
    "memoryBudgetFraction",
    "runtimeReserveBytes",
    "reserveFds",
  ] as const).filter(c.given);
  const modelNote = modelFlags.length > 0 ? ` [${modelFlags.join(", ")}: ${EXPLICIT}]` : "";
  let maxConnections: number;
  let connectionCap: Plan["connectionCap"];
  let connectionsWhy: string;
  if (inputs.maxConnections !== undefined) {
    maxConnections = Math.max(1, Math.floor(inputs.maxConnections));
    connectionCap = "explicit";
    connectionsWhy = EXPLICIT;
    if (maxConnections > fdCapConnections) {
      notes.push(`explicit maxConnections ${maxConnections} exceeds the fd cap ${fdCapConnections}`);
    }
    if (maxConnections > memoryCapConnections) {
      notes.push(`explicit maxConnections ${maxConnections} exceeds the memory cap ${memoryCapConnections}`);
    }
  } else {
    connectionCap = fdCapConnections < memoryCapConnections ? "fds" : "memory";
    maxConnections = Math.max(1, Math.min(memoryCapConnections, fdCapConnections));
    if (Math.min(memoryCapConnections, fdCapConnections) < 1) {
      notes.push("machine below the minimum for the connection model; maxConnections set to 1");
    }
    connectionsWhy = `min(memory cap ${formatCount(memoryCapConnections)}, fd cap ${
      formatCount(fdCapConnections)
    }): ${connectionCap} bind${modelNote}`;
  }
  const plan = { maxConnections, connectionCap, memoryCapConnections, fdCapConnections };
  connectionRows(c, plan, connectionsWhy);
  fdAdvice(c, inputs.maxConnections !== undefined ? maxConnections : memoryCapConnections, fdCapConnections);
  return plan;
}

function connectionRows(c: PlanContext, k: ConnectionPlan, why: string): void {
  const { inputs } = c;
  c.rows.push({
    setting: "maxConnections",
    value: formatCount(k.maxConnections),
    probe: `${c.memoryProbe}, ${c.fdProbe}`,
    why,
  });
  c.rows.push({
    setting: "memoryCap",
    value: formatCount(k.memoryCapConnections),
    probe: c.memoryProbe,
    why: `(${Math.round(inputs.memoryBudgetFraction * 100)}% mem - ${formatBytes(inputs.runtimeReserveBytes)}) / (${
      formatBytes(inputs.perConnBytes)
    } x ${inputs.safetyFactor} per connection)`,
  });
  c.rows.push({
    setting: "fdCap",
    value: formatCount(k.fdCapConnections),
    probe: c.fdProbe,
    why: `hard limit - ${inputs.reserveFds} fds for stdio, runtime, store, listeners`,
  });
  c.rows.push({
    setting: "nofile soft",
    value: formatCount(c.hard),
    probe: `nofile soft ${formatCount(c.p.noFile.soft.value)}, hard ${formatCount(c.hard)}`,
    why: "raise soft to hard at start; only root can raise hard",
  });
}

/** fds below what the connection target needs: only the OS (root) can lift the hard limit. */
function fdAdvice(c: PlanContext, wantedConnections: number, fdCapConnections: number): void {
  if (wantedConnections <= fdCapConnections) return;
  const neededFds = wantedConnections + c.inputs.reserveFds;
  const nrOpen = c.p.sysctl.nrOpen.value;
  if (c.linux && nrOpen !== null && neededFds > nrOpen) c.osAdvice.push(`sysctl -w fs.nr_open=${neededFds}`);
  const fileMax = c.p.sysctl.fileMax.value;
  if (c.linux && fileMax !== null && neededFds > fileMax) c.osAdvice.push(`sysctl -w fs.file-max=${neededFds * 2}`);
  c.osAdvice.push(
    `ulimit -n ${neededFds}  # in the shell that starts iris, as root; systemd: LimitNOFILE=${neededFds}`,
  );
}

/**
 * Shards: one router thread per usable CPU, less one for the storage writer, GC and the kernel's
 * network work. Measured on 2 cores (bench throughput --shards 1,2): a second shard gave the same
 * msgs/s and ~25x the p50 latency at half load, so small machines get one.
 */
function planShards(c: PlanContext): number {
  const { inputs, cpus } = c;
  const shards = inputs.shards !== undefined
    ? Math.max(1, Math.floor(inputs.shards))
    : cpus <= 2
    ? 1
    : clamp(cpus - 1, 1, MAX_SHARDS);
  if (c.given("shards") && shards > cpus) c.notes.push(`explicit shards ${shards} exceeds effective cpus ${cpus}`);
  c.rows.push({
    setting: "shards",
    value: String(shards),
    probe: c.cpuProbe,
    why: c.given("shards")
      ? EXPLICIT
      : `1 on <= 2 cpus, else effective cpus - 1 (a core for the writer and GC), at most ${MAX_SHARDS}`,
  });
  return shards;
}

/** Memory watermarks, measured against resident size. */
function planWatermarks(c: PlanContext): { spillBytes: number; refuseBytes: number } {
  const spillBytes = c.inputs.spillBytes ?? Math.floor(c.memory * SPILL_FRACTION);
  const refuseBytes = c.inputs.refuseBytes ?? Math.floor(c.memory * REFUSE_FRACTION);
  if (spillBytes >= refuseBytes) {
    c.notes.push(`spill watermark ${spillBytes} is not below refuse watermark ${refuseBytes}`);
  }
  c.rows.push({
    setting: "spillBytes",
    value: formatBytes(spillBytes),
    probe: c.memoryProbe,
    why: c.given("spillBytes")
      ? EXPLICIT
      : `${SPILL_FRACTION * 100}% of memory: above it, messages for slow/absent users go to disk`,
  });
  c.rows.push({
    setting: "refuseBytes",
    value: formatBytes(refuseBytes),
    probe: c.memoryProbe,
    why: c.given("refuseBytes") ? EXPLICIT : `${REFUSE_FRACTION * 100}% of memory: above it, new connections get 503`,
  });
  return { spillBytes, refuseBytes };
}

function planStore(c: PlanContext): Plan["store"] {
  const maxRows = c.inputs.storeMaxRows ?? STORE_COMMIT_ROWS;
  const flushMs = c.inputs.storeFlushMs ?? storeFlushMsFor(c.cpus);
  c.rows.push({
    setting: "store.maxRows",
    value: formatCount(maxRows),
    probe: "none: the same on every machine",
    why: c.given("storeMaxRows")
      ? EXPLICIT
      : "a commit this big spreads its fixed cost; waiting for more only holds acks",
  });
  c.rows.push({
    setting: "store.flushMs",
    value: String(flushMs),
    probe: c.cpuProbe,
    why: c.given("storeFlushMs") ? EXPLICIT : "5 ms on 1 cpu, 4 on 2-3, 3 on 4-7, 2 on 8+",
  });
  return { maxRows, flushMs };
}

/** The JS heap hint. */
function planHeap(c: PlanContext): { heapMB: number; heapEnv: Record<string, string> } {
  const memoryMB = Math.max(1, Math.floor(c.memory / MiB));
  const heapMB = c.inputs.heapMB !== undefined
    ? Math.max(1, Math.floor(c.inputs.heapMB))
    : Math.min(memoryMB, Math.max(MIN_HEAP_MB, Math.floor(memoryMB * HEAP_FRACTION)));
  c.rows.push({
    setting: HEAP_ENV_VAR,
    value: `${formatCount(heapMB)} MiB`,
    probe: c.memoryProbe,
    why: c.given("heapMB")
      ? EXPLICIT
      : `${HEAP_FRACTION * 100}% of memory, at least ${MIN_HEAP_MB} MiB; GC sizing hint, not a cap`,
  });
  return { heapMB, heapEnv: { [HEAP_ENV_VAR]: String(heapMB * MiB) } };
}

/**
 * Keep the allocator's holes (less CPU per message) when memory is plentiful for the connections
 * planned; otherwise Bun's default (less RSS per idle connection).
 */
function planAllocator(c: PlanContext, maxConnections: number): Record<string, string> {
  const cost = maxConnections * KEPT_HOLES_BYTES_PER_CONN;
  const allowed = c.memory * KEPT_HOLES_MAX_MEMORY_SHARE;
  const keep = cost <= allowed;
  c.rows.push({
    setting: ALLOCATOR_HOLES_ENV_VAR,
    value: keep ? "0 (keep)" : "Bun's default",
    probe: c.memoryProbe,
    why: `${formatCount(maxConnections)} conns x ${KEPT_HOLES_BYTES_PER_CONN / 1024} KiB = ${formatBytes(cost)} ` +
      `${keep ? "<=" : ">"} ${KEPT_HOLES_MAX_MEMORY_SHARE * 100}% of memory: ` +
      (keep ? "keep freed runs, fewer page faults" : "return freed runs, less RSS"),
  });
  return keep ? { [ALLOCATOR_HOLES_ENV_VAR]: "0" } : {};
}

/**
 * The environment to start the server with under --auto-tune: the heap hint, and the allocator
 * setting unless the operator's environment already names it (their choice wins).
 */
export function startEnvOf(
  p: Pick<Plan, "heapEnv" | "allocatorEnv">,
  env: Record<string, string | undefined>,
): Record<string, string> {
  const allocator = Object.entries(p.allocatorEnv).filter(([k]) => env[k] === undefined);
  return { ...p.heapEnv, ...Object.fromEntries(allocator) };
}

/**
 * RUNTIME_ENV without what the operator's environment already names, or a setting it yields to
 * (RUNTIME_ENV_YIELDS_TO): their choice wins.
 */
export function runtimeEnvOf(env: Record<string, string | undefined>): Record<string, string> {
  const named = (k: string): boolean => env[k] !== undefined;
  return Object.fromEntries(
    Object.entries(RUNTIME_ENV).filter(([k]) => !named(k) && !(RUNTIME_ENV_YIELDS_TO[k] ?? []).some(named)),
  );
}

/** Kernel network settings (Linux only; read-only probes, so advice only). */
function networkAdvice(c: PlanContext): void {
  const somaxconn = c.p.sysctl.somaxconn.value;
  if (c.linux && somaxconn !== null && somaxconn < SOMAXCONN_TARGET) {
    c.osAdvice.push(`sysctl -w net.core.somaxconn=${SOMAXCONN_TARGET}`);
  }
  const range = c.p.sysctl.ipLocalPortRange.value;
  if (c.linux && range !== null && range[1] - range[0] + 1 < NARROW_PORT_RANGE) {
    c.osAdvice.push(
      `sysctl -w net.ipv4.ip_local_port_range="1024 65535"  # load-test clients: ${
        range[1] - range[0] + 1
      } ephemeral ports now`,
    );
  }
}
