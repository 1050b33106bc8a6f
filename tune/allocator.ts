// The native allocator's settings (Bun's mimalloc). mimalloc reads its options from MIMALLOC_*
// environment variables once, at process start, so they are applied the way the heap hint is:
// main.ts re-executes the binary once with them added (tune/reexec.ts: same pid).
//
// Why (issue 14, paced p99; docs/BENCHMARKS.md "paced p99 (branch hot-p99)"): with Bun's default
// purge delay (100 ms) mimalloc hands pages that went unused for 100 ms back to the kernel
// (madvise) and takes them back on the next allocation (a page fault, a zeroed page). Under a
// steady paced load the shard's native memory (socket buffers, message bytes) is freed and
// reused on that time scale, so the `mi-scavenger` thread spent 15-25% of a core in madvise and
// TLB shootdowns, every thread paid the page faults, and on a 2-core machine that CPU came out of
// the shard and the load generator: a queue for the CPU, which is what the paced p99 measures.

/** mimalloc's option for how long a free page is kept before it is returned to the OS. */
export const PURGE_DELAY_ENV_VAR = "MIMALLOC_PURGE_DELAY";

/**
 * How long (ms) a free page stays committed before mimalloc returns it to the OS. Long enough that
 * steady traffic reuses its pages instead of returning and faulting them in again; short enough
 * that memory freed after a burst is given back within seconds, so the RSS-based memory pressure
 * (spill and refuse watermarks, supervisor.ts) falls again once the burst's memory is free.
 */
export const ALLOCATOR_PURGE_DELAY_MS = 5_000;

/**
 * The allocator settings to start with: ours, except any the operator set in the environment
 * (their value wins, so a deployment can tune or undo this without a rebuild).
 */
export function allocatorEnv(env: Record<string, string | undefined>): Record<string, string> {
  if (env[PURGE_DELAY_ENV_VAR] !== undefined) return {};
  return { [PURGE_DELAY_ENV_VAR]: String(ALLOCATOR_PURGE_DELAY_MS) };
}
