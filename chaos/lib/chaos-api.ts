// Client for the server's --chaos HTTP endpoints (src/chaos/admin.ts). Every call has a short
// timeout: the server may be the thing being killed, and a fault loop must never hang on it.

export interface Counters {
  main: Record<string, number>;
  writer: Record<string, number>;
  shards: Record<string, number>[];
  totals: Record<string, number>;
}

const TIMEOUT_MS = 3000;

export class ChaosApi {
  constructor(readonly base: string) {}

  private async post(path: string): Promise<boolean> {
    try {
      const r = await fetch(`${this.base}${path}`, { method: "POST", signal: AbortSignal.timeout(TIMEOUT_MS) });
      await r.arrayBuffer();
      return r.ok;
    } catch {
      return false; // the server is down (or restarting): the caller counts a miss, not a crash
    }
  }

  killShard(i: number): Promise<boolean> {
    return this.post(`/shards/${i}/kill`);
  }

  crashShard(i: number): Promise<boolean> {
    return this.post(`/shards/${i}/crash`);
  }

  /** Blocks shard i's event loop for `ms` (a starved thread: no timer, socket or port message runs). */
  stallShard(i: number, ms: number): Promise<boolean> {
    return this.post(`/shards/${i}/stall?ms=${Math.round(ms)}`);
  }

  killWriter(): Promise<boolean> {
    return this.post(`/writer/kill`);
  }

  shardGarbage(i: number, count: number, seed: number): Promise<boolean> {
    return this.post(`/shards/${i}/garbage?count=${count}&seed=${seed}`);
  }

  writerGarbage(count: number, seed: number): Promise<boolean> {
    return this.post(`/writer/garbage?count=${count}&seed=${seed}`);
  }

  async counters(): Promise<Counters | null> {
    try {
      const r = await fetch(`${this.base}/counters`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      return r.ok ? ((await r.json()) as Counters) : null;
    } catch {
      return null;
    }
  }
}

/** Thread restarts the server reports (shards + storage writer), 0 when unreadable. */
export function threadRestarts(c: Counters | null): number {
  return (c?.totals.shardRestarts ?? 0) + (c?.totals.writerRestarts ?? 0);
}
