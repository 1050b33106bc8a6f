// A thread's sampled JS stacks as a short report: the functions most often on top of the stack
// (self) and anywhere on it (inclusive), by function name and file, as counts and shares of the
// samples. Pure: the sampler (host/thread-profile.ts) passes the stacks in. Issue 14's profiles
// needed this for the shard and writer threads of the compiled binary, which `bun --cpu-prof`
// does not follow into Workers.

/** One frame as the sampler reports it (innermost first in a stack). */
export interface SampledFrame {
  name: string;
  /** Source file or URL; "" for native code. */
  url: string;
}

export interface ProfileEntry {
  /** `name (file)`, or `name [native]`. */
  fn: string;
  samples: number;
  /** Share of all samples, in percent (one decimal). */
  pct: number;
}

export interface ProfileSummary {
  thread: string;
  ms: number;
  samples: number;
  self: ProfileEntry[];
  inclusive: ProfileEntry[];
}

/**
 * How one frame is named in the report: by function and file, not line (a sample's line is where
 * in the function it landed, so lines would split one function into many rows).
 */
export function frameLabel(f: SampledFrame): string {
  const name = f.name === "" ? "(anonymous)" : f.name;
  if (f.url === "") return `${name} [native]`;
  return `${name} (${f.url.slice(f.url.lastIndexOf("/") + 1)})`;
}

function ranked(counts: Map<string, number>, total: number, top: number): ProfileEntry[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, top)
    .map(([fn, samples]) => ({ fn, samples, pct: Math.round((1000 * samples) / total) / 10 }));
}

/**
 * Counts each stack's top frame (self) and each distinct frame in it once (inclusive: a recursive
 * function counts once per sample). Empty stacks are samples with no JS on the stack and count
 * in neither list, only in `samples`.
 */
export function summarizeStacks(
  thread: string,
  ms: number,
  stacks: readonly (readonly SampledFrame[])[],
  top: number,
): ProfileSummary {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const stack of stacks) {
    if (stack.length === 0) continue;
    const head = frameLabel(stack[0]!);
    self.set(head, (self.get(head) ?? 0) + 1);
    const seen = new Set<string>();
    for (const f of stack) {
      const label = frameLabel(f);
      if (seen.has(label)) continue;
      seen.add(label);
      inclusive.set(label, (inclusive.get(label) ?? 0) + 1);
    }
  }
  const total = Math.max(1, stacks.length);
  return {
    thread,
    ms,
    samples: stacks.length,
    self: ranked(self, total, top),
    inclusive: ranked(inclusive, total, top),
  };
}

/** The report as text: a header, then both lists. */
export function formatProfile(p: ProfileSummary): string {
  const rows = (list: ProfileEntry[]) =>
    list.length === 0
      ? "  (no samples with JS on the stack)\n"
      : list.map((e) => `  ${e.pct.toFixed(1).padStart(5)}% ${String(e.samples).padStart(7)}  ${e.fn}\n`).join("");
  return `# ${p.thread}: ${p.samples} samples in ${p.ms} ms\n` +
    `## self (on top of the stack)\n${rows(p.self)}` +
    `## inclusive (anywhere on the stack)\n${rows(p.inclusive)}`;
}
