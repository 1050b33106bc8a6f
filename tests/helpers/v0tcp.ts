// A seed (v0) client on raw TCP for tests: writes honour the kernel's back-pressure (what the socket
// does not take waits for its drain, as a blocking client's write would), every byte the server
// writes is collected, and the close is observed. Plus small readers for /metrics and RSS.

import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { until } from "./server.ts";

export class V0Tcp {
  private buf = new Uint8Array(0);
  private queue: Uint8Array[] = [];
  closed = false;
  /** Times a write could not be taken whole by the kernel: the client was slowed. */
  blockedWrites = 0;
  private constructor(private sock: Socket<undefined> | null) {}

  static async connect(port: number): Promise<V0Tcp> {
    const c = new V0Tcp(null);
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, d) => c.received(d),
        drain: () => c.flush(),
        close: () => void (c.closed = true),
        error: () => void (c.closed = true),
      },
    });
    return c;
  }

  private received(d: Uint8Array): void {
    const n = new Uint8Array(this.buf.length + d.length);
    n.set(this.buf);
    n.set(d, this.buf.length);
    this.buf = n;
  }

  write(b: Uint8Array): void {
    this.queue.push(b);
    if (this.queue.length === 1) this.flush();
  }

  private flush(): void {
    while (this.queue.length && !this.closed) {
      const b = this.queue[0]!;
      const n = this.sock!.write(b);
      if (n < b.byteLength) {
        this.blockedWrites++;
        this.queue[0] = b.subarray(Math.max(n, 0));
        return;
      }
      this.queue.shift();
    }
  }

  /** Everything handed to write() has been taken by the kernel. */
  get written(): boolean {
    return this.queue.length === 0;
  }

  get pending(): number {
    return this.buf.length;
  }

  async read(n: number, ms = 10_000): Promise<Uint8Array> {
    await until(() => this.buf.length >= n || this.closed, `${n} bytes from the server`, ms);
    if (this.buf.length < n) throw new Error(`closed after ${this.buf.length} of ${n} bytes`);
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }

  async waitClosed(ms = 5000): Promise<void> {
    await until(() => this.closed, "the server to close the connection", ms);
  }

  end(): void {
    this.sock?.end();
  }
}

/** One value from the server's Prometheus text. */
export async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}

/** Resident memory of a process in MiB, from /proc. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}
