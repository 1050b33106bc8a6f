// A thread's profile from `perf` with its JavaScript named (issue 14). JavaScriptCore's sampling
// profiler (SIGUSR2, src/host/thread-profile.ts) sees only samples with JS on the stack and
// overstates some entries (`now` read 7–9% of the shard against 2% of the thread in the vDSO);
// `perf` sees every cycle of the thread (kernel, runtime, JIT code) but not JS names. A server
// started with BUN_JSC_useJITDump=1 writes JITDump files (every compiled function's address
// range and name, with a timestamp), and `perf record -k 1` stamps samples on the same clock, so
// each JIT address is named by the newest load of that range before the sample.
// Pure: the JITDump bytes and `perf script` text in, a report out (bench/perf-thread.ts does I/O).

/** One compiled function's code, as a JITDump JIT_CODE_LOAD record gives it. */
export interface JitCode {
  start: number;
  end: number;
  name: string;
  /** Load time, seconds on CLOCK_MONOTONIC (what `perf record -k 1` stamps samples with). */
  at: number;
}

const JITDUMP_MAGIC = 0x4a695444; // "JiTD" as a little-endian u32
const JIT_CODE_LOAD = 0;
const RECORD_HEADER_BYTES = 16; // id u32, total_size u32, timestamp u64
const LOAD_FIXED_BYTES = 40; // pid u32, tid u32, vma u64, code_addr u64, code_size u64, code_index u64

/** The code loads of one JITDump file (perf's jitdump format, version 1). Throws on a foreign file. */
export function parseJitDump(bytes: Uint8Array): JitCode[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 40 || dv.getUint32(0, true) !== JITDUMP_MAGIC) throw new Error("not a JITDump file");
  const out: JitCode[] = [];
  let at = dv.getUint32(8, true); // the header's own size
  while (at + RECORD_HEADER_BYTES <= bytes.byteLength) {
    const id = dv.getUint32(at, true);
    const size = dv.getUint32(at + 4, true);
    if (size < RECORD_HEADER_BYTES || at + size > bytes.byteLength) break; // a file still being written
    if (id === JIT_CODE_LOAD) {
      const body = at + RECORD_HEADER_BYTES;
      const start = Number(dv.getBigUint64(body + 16, true));
      const codeSize = Number(dv.getBigUint64(body + 24, true));
      let end = body + LOAD_FIXED_BYTES;
      while (end < at + size && bytes[end] !== 0) end++;
      const name = new TextDecoder().decode(bytes.subarray(body + LOAD_FIXED_BYTES, end));
      out.push({ start, end: start + codeSize, name, at: Number(dv.getBigUint64(at + 8, true)) / 1e9 });
    }
    at += size;
  }
  return out;
}

/** Finds the function a JIT address belonged to at a given time. */
export class JitNames {
  private readonly byPage = new Map<number, JitCode[]>();
  constructor(codes: readonly JitCode[]) {
    for (const c of codes) {
      for (let p = Math.floor(c.start / 4096); p <= Math.floor((c.end - 1) / 4096); p++) {
        const l = this.byPage.get(p);
        if (l) l.push(c);
        else this.byPage.set(p, [c]);
      }
    }
  }
  /** The newest code loaded at `ip` no later than `at` (a freed range is reused by later code). */
  nameAt(ip: number, at: number): string | null {
    let best: JitCode | null = null;
    for (const c of this.byPage.get(Math.floor(ip / 4096)) ?? []) {
      if (c.start <= ip && ip < c.end && c.at <= at && (best === null || c.at > best.at)) best = c;
    }
    return best?.name ?? null;
  }
}

/** Where a frame's code lives. */
export type FrameKind = "js" | "runtime" | "kernel" | "vdso" | "libc";

export interface Frame {
  kind: FrameKind;
  name: string;
}

export interface Sample {
  at: number;
  /** Innermost first. */
  frames: Frame[];
}

/** JIT tiers' prefixes in JITDump names ("JSC-FTL: routeNow#Ah6LEa"): dropped, the tier kept apart. */
function jsName(raw: string): string {
  const m = raw.match(/^JSC-([A-Za-z]+): (.*?)(#[A-Za-z0-9]+)?$/);
  return m ? `${m[2] || "(anonymous)"} [${m[1]}]` : raw;
}

/**
 * Parses `perf script -F time,ip,sym,dso` output (with or without call chains): a header line per
 * sample ("<tid> <time>:" and, without -g, the ip on the same line), then one frame per line.
 */
export function parsePerfScript(text: string, jit: JitNames): Sample[] {
  const samples: Sample[] = [];
  let cur: Sample | null = null;
  const frame = (ip: number, sym: string, dso: string, at: number): Frame => {
    if (dso.includes("kernel.kallsyms")) return { kind: "kernel", name: sym };
    if (dso.includes("[vdso]")) return { kind: "vdso", name: sym === "[unknown]" ? "[vdso]" : sym };
    if (/\/lib[^/]*\.so/.test(dso) || dso.includes("libc")) return { kind: "libc", name: sym };
    const named = sym !== "[unknown]" && sym !== "" ? sym : null;
    const js = jit.nameAt(ip, at);
    if (js !== null) return { kind: "js", name: jsName(js) };
    return { kind: "runtime", name: named ?? "[runtime native]" };
  };
  for (const line of text.split("\n")) {
    // Frames are indented with a tab; a sample's header is not (it may start with a tid).
    const head = line.startsWith("\t") ? null : line.match(/^\s*(?:\d+\s+)?(\d+\.\d+):\s*(.*)$/);
    if (head) {
      cur = { at: Number(head[1]), frames: [] };
      samples.push(cur);
      const rest = head[2]!.trim().match(/^([0-9a-f]+)\s+(.*?)\s+\((.*)\)$/);
      if (rest) cur.frames.push(frame(parseInt(rest[1]!, 16), rest[2]!, rest[3]!, cur.at));
      continue;
    }
    const f = line.match(/^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$/);
    if (f && cur) cur.frames.push(frame(parseInt(f[1]!, 16), f[2]!, f[3]!, cur.at));
  }
  return samples.filter((s) => s.frames.length > 0);
}

export interface ThreadProfile {
  samples: number;
  /** Share of samples by where the innermost frame is. */
  byKind: Record<FrameKind, number>;
  /** Innermost frame's name, share of samples. */
  self: [string, number][];
  /**
   * Each sample charged to its nearest JavaScript function (the innermost JS frame): its own code
   * plus the runtime and kernel work it called (a socket write under `writeAll`, a Map's native
   * helper under `link`); JIT glue (thunks, inline caches) is skipped. A lower bound beyond the
   * JS code itself: libc and the runtime are built without frame pointers, so a chain through
   * them (every socket write, in `__send`) stops there and lands in "(no JS on the stack)" with
   * the event loop's own work.
   */
  nearestJs: [string, number][];
}

/** Sorted shares (0–1) of a count map, the top `n`. */
function top(counts: Map<string, number>, total: number, n: number): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, v / total]);
}

/** JIT glue between functions (call thunks, inline caches): not a function to charge time to. */
function isGlue(name: string): boolean {
  return /\[(?:[A-Za-z]*Thunk|InlineCache)\]$/.test(name) || name.startsWith("unspecified [");
}

export function summarizeSamples(samples: readonly Sample[], n = 40): ThreadProfile {
  const byKind: Record<FrameKind, number> = { js: 0, runtime: 0, kernel: 0, vdso: 0, libc: 0 };
  const self = new Map<string, number>();
  const nearest = new Map<string, number>();
  for (const s of samples) {
    const f = s.frames[0]!;
    byKind[f.kind]++;
    self.set(f.name, (self.get(f.name) ?? 0) + 1);
    const js = s.frames.find((x) => x.kind === "js" && !isGlue(x.name))?.name ?? "(no JS on the stack)";
    nearest.set(js, (nearest.get(js) ?? 0) + 1);
  }
  const total = Math.max(1, samples.length);
  for (const k of Object.keys(byKind) as FrameKind[]) byKind[k] /= total;
  return { samples: samples.length, byKind, self: top(self, total, n), nearestJs: top(nearest, total, n) };
}

export function formatThreadProfile(title: string, p: ThreadProfile): string {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  const k = p.byKind;
  const lines = [
    `# ${title}: ${p.samples} samples`,
    `where: JS ${pct(k.js)}, runtime native ${pct(k.runtime)}, kernel ${pct(k.kernel)}, vDSO ${pct(k.vdso)}, libc ${
      pct(k.libc)
    }`,
    "## self (innermost frame)",
    ...p.self.map(([name, x]) => `${pct(x)}  ${name}`),
    "## by nearest JS function (its code, and what it called where the call chain reaches it)",
    ...p.nearestJs.map(([name, x]) => `${pct(x)}  ${name}`),
  ];
  return lines.join("\n") + "\n";
}
