// What a burst of traffic leaves behind in a server whose users stay connected (issue 14): starts
// the binary, logs in PAIRS senders and PAIRS recipients (v1), has each sender send MSGS messages
// to its own recipient (a window of 32 unanswered at a time), then leaves every connection open
// and idle, reading VmRSS and the owners' counters every 5 s for WAIT seconds. Not a scenario: a
// tool. Run it under the bench lock, alone on the machine.
// usage: bun bench/probe-idle-memory.ts BINARY [PAIRS] [MSGS] [WAIT_S]

import { readFileSync, rmSync } from "node:fs";
import { Conn, type ConnEvents } from "./lib/conn.ts";
import { metric, scrape } from "./lib/prom.ts";
import { sendTemplate, stamp } from "./lib/wire.ts";

const bin = process.argv[2] ?? "dist/iris";
const pairs = Number(process.argv[3] ?? 1000);
const msgs = Number(process.argv[4] ?? 600);
const waitS = Number(process.argv[5] ?? 100);
const WINDOW = 32;
const PAYLOAD = 64;
const SAMPLE_EVERY_MS = 5000;

const port = 22_000 + Math.floor(Math.random() * 1000);
const dir = `/tmp/iris-probe-idle-${port}`;
const server = Bun.spawn(
  [bin, "--port", String(port), "--data-dir", dir, "--rate-msgs", "0", "--rate-frames", "0"],
  { stdout: "ignore", stderr: "inherit" },
);
const rssMb = () => Number(readFileSync(`/proc/${server.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)![1]) / 1024;
const counters = async () => {
  const s = await scrape(`http://127.0.0.1:${port}`);
  return {
    released: metric(s, "iris_dedupe_memories_released_total"),
    usersHeld: metric(s, "iris_users_in_memory"),
  };
};

let answered = 0;
let failures = 0;
const sentBy = new Array<number>(pairs).fill(0);
const templates = Array.from({ length: pairs }, (_, i) => sendTemplate("v1", `idle-r${i}`, PAYLOAD));
let allAnswered!: () => void;
const done = new Promise<void>((r) => (allAnswered = r));

function sendNext(c: Conn): void {
  const k = c.i;
  if (sentBy[k]! >= msgs) return;
  const n = sentBy[k]!++;
  c.send(stamp(templates[k]!, k * msgs + n, Date.now(), k, 0).slice());
}

const events: ConnEvents = {
  deliver() {},
  deliverRun() {},
  sent(c, status) {
    if (status !== 1 && status !== 2) failures++;
    if (++answered === pairs * msgs) allAnswered();
    sendNext(c);
  },
  serverError(_c, what) {
    failures++;
    console.error("server error:", what);
  },
  closed() {},
};

try {
  await Bun.sleep(2500);
  const target = { kind: "ws" as const, url: `ws://127.0.0.1:${port}/ws` };
  const recipients: Conn[] = [];
  const senders: Conn[] = [];
  for (let i = 0; i < pairs; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(i + 100, pairs); k++) {
      const r = new Conn(k, `idle-r${k}`, "v1", PAYLOAD, events);
      const s = new Conn(k, `idle-s${k}`, "v1", PAYLOAD, events);
      recipients.push(r);
      senders.push(s);
      batch.push(r.connect(target, 10_000), s.connect(target, 10_000));
    }
    await Promise.all(batch);
  }
  const rssLoggedIn = rssMb();
  const t0 = performance.now();
  for (const s of senders) for (let w = 0; w < WINDOW; w++) sendNext(s);
  let giveUp!: ReturnType<typeof setTimeout>;
  await Promise.race([done, new Promise<void>((r) => (giveUp = setTimeout(r, 300_000)))]);
  clearTimeout(giveUp); // else it keeps the process alive after the report
  const sendSecs = (performance.now() - t0) / 1000;
  const samples: { s: number; rssMb: number; released: number; usersHeld: number }[] = [];
  const t1 = performance.now();
  while (performance.now() - t1 < waitS * 1000) {
    samples.push({ s: Math.round((performance.now() - t1) / 1000), rssMb: Math.round(rssMb()), ...(await counters()) });
    await Bun.sleep(SAMPLE_EVERY_MS);
  }
  console.log(JSON.stringify({
    bin,
    pairs,
    msgs,
    answered,
    failures,
    sendSecs: Math.round(sendSecs * 10) / 10,
    rssLoggedInMb: Math.round(rssLoggedIn),
    samples,
  }));
  for (const c of [...recipients, ...senders]) c.close();
} finally {
  server.kill();
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
}
