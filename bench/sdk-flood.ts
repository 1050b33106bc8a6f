// An open-loop flood by SDK clients, or an online pair beside it (session 46). Unlike the
// offline-flood scenario's load generator, the SDK keeps a refused send (SERVER_BUSY and the like),
// backs off and retries it in order, so this shows what a server's admission does for clients that
// behave. Prints one JSON line of figures. Targets loopback servers started by hand; stops by itself.
//
//   bun bench/sdk-flood.ts flood URL FIRST COUNT RATE SECONDS
//     senders flood-FIRST..flood-(FIRST+COUNT-1), each RATE sends a second for SECONDS, round-robin
//     over 200 users who never log in (offline-0..offline-9999), 64-byte bodies; then waits up to
//     60 s for every answer.
//   bun bench/sdk-flood.ts pair URL RATE SECONDS
//     probe-a sends to probe-b RATE times a second; send → delivery latency at probe-b.

import { IrisClient } from "../src/client/index.ts";

/** Offline users each flood sender cycles through. */
const USERS_PER_SENDER = 200;
const OFFLINE_USERS = 10_000;
/** How often the flood's pacer wakes (ms). */
const PACE_TICK_MS = 5;
/** How long to wait for the last answers after the flood (ms). */
const SETTLE_MS = 60_000;

const now = () => performance.now();

async function flood(url: string, first: number, count: number, rate: number, seconds: number): Promise<object> {
  const clients: IrisClient[] = [];
  for (let i = first; i < first + count; i++) {
    const c = new IrisClient({ url, user: `flood-${i}`, bundles: true, autoReconnect: false });
    await c.connect();
    clients.push(c);
  }
  const made = new Array<number>(count).fill(0);
  const body = new Uint8Array(64);
  let sent = 0, stored = 0, failed = 0, lastAck = 0;
  const t0 = now();
  const end = t0 + seconds * 1000;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const t = now();
      if (t >= end) {
        clearInterval(timer);
        return done();
      }
      const due = Math.floor(((t - t0) / 1000) * rate);
      for (let ci = 0; ci < count; ci++) {
        for (; made[ci]! < due; made[ci]!++) {
          const to = `offline-${((first + ci) * USERS_PER_SENDER + (made[ci]! % USERS_PER_SENDER)) % OFFLINE_USERS}`;
          sent++;
          clients[ci]!.send(to, body).then(() => {
            stored++;
            lastAck = now();
          }, () => failed++);
        }
      }
    }, PACE_TICK_MS);
  });
  const floodEnd = now();
  while (stored + failed < sent && now() - floodEnd < SETTLE_MS) await Bun.sleep(50);
  for (const c of clients) c.close();
  return { role: "flood", sent, stored, failed, floodS: (floodEnd - t0) / 1000, lastAckS: (lastAck - t0) / 1000 };
}

async function pair(url: string, rate: number, seconds: number): Promise<object> {
  const a = new IrisClient({ url, user: "probe-a", bundles: true, autoReconnect: false });
  const b = new IrisClient({ url, user: "probe-b", bundles: true, autoReconnect: false });
  await a.connect();
  await b.connect();
  const latencies: number[] = [];
  b.onMessage((m) => latencies.push(now() - Number(m.text())));
  const t0 = now();
  let sent = 0;
  while (now() - t0 < seconds * 1000) {
    a.send("probe-b", String(now())).catch(() => {});
    sent++;
    await Bun.sleep(1000 / rate);
  }
  const wait = now();
  while (latencies.length < sent && now() - wait < SETTLE_MS) await Bun.sleep(50);
  a.close();
  b.close();
  latencies.sort((x, y) => x - y);
  const at = (p: number) =>
    latencies.length
      ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10
      : null;
  return { role: "pair", sent, delivered: latencies.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
}

const [role, url, ...rest] = process.argv.slice(2);
const nums = rest.map(Number);
if (!url || !/^wss?:\/\/(127\.|\[::1\]|localhost)/.test(url) || nums.some((n) => !Number.isFinite(n) || n < 0)) {
  console.error(
    "usage: bun bench/sdk-flood.ts flood URL FIRST COUNT RATE SECONDS | pair URL RATE SECONDS (loopback URL)",
  );
  process.exit(2);
}
const out = role === "flood"
  ? await flood(url, nums[0]!, nums[1]!, nums[2]!, nums[3]!)
  : role === "pair"
  ? await pair(url, nums[0]!, nums[1]!)
  : null;
if (!out) {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
console.log(JSON.stringify(out));
process.exit(0);
