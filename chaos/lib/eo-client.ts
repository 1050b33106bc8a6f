// One client process of the exactly-once checker (chaos/scenarios/exactly-once.ts), as an
// application would run it: everything it must not forget lives in files, so a kill -9 and a
// fresh process started on the same files is an ordinary restart.
//
// <url> may be several, comma-separated (a cluster's nodes): the SDK fails over between them.
//   sender:    bun eo-client.ts sender <url> <user> <dir> <peers,comma,separated> <intervalMs>
//   recipient: bun eo-client.ts recipient <url> <user> <dir>
//
// Sender files: <user>.next (the next message number, written before the send), <user>.sdk (the
// SDK's saved state: its unacked sends, resent with the same ids after a restart), <user>.acks
// (one line per server ack: "id status"). It stops sending when <dir>/stop exists and exits once
// nothing is unacked.
// Recipient files: <user>.log (one line per message handed to the application: "from id seq") and
// <user>.state ({ processed, sdk }): the application's output and the SDK's resume point are saved
// together, so a kill between the two cannot make a restart process a message twice. Lines past
// `processed` were never committed and are cut off at start.
// SIGUSR2 drops the connection (a network cut); the SDK reconnects and resumes.

import { appendFileSync, existsSync, readFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileStorage, IrisClient, type IrisSavedState, type IrisStorage } from "../../src/client/index.ts";

const [role, url, user, dir, peersArg, intervalArg] = process.argv.slice(2);
if (!role || !url || !user || !dir) {
  console.error("usage: eo-client.ts sender|recipient <url> <user> <dir> [peers] [intervalMs]");
  process.exit(2);
}
const path = (ext: string) => join(dir, `${user}.${ext}`);

function readJson<T>(p: string): T | null {
  try {
    return JSON.parse(readFileSync(p, "utf8")) as T;
  } catch {
    return null;
  }
}
function writeAtomically(p: string, text: string): void {
  writeFileSync(`${p}.tmp`, text);
  renameSync(`${p}.tmp`, p);
}

async function sender(peers: string[], intervalMs: number): Promise<void> {
  const client = new IrisClient({
    urls: url!.split(","),
    user: user!,
    storage: fileStorage(path("sdk")),
    resendAfterMs: 1000,
  });
  const acked = (id: string, status: string) => appendFileSync(path("acks"), `${id} ${status}\n`);
  client.onSent((r) => acked(r.id, r.status)); // also the sends restored from the SDK's file
  if (process.env.IRIS_ORDER_TRACE === "1") traceSdk(client, path("trace"));
  process.on("SIGUSR2", () => client.dropConnection());
  client.onState((st) => appendFileSync(path("states"), `${new Date().toISOString()} ${st}\n`)); // diagnosis, as recipients
  await client.connect();
  let next = readJson<number>(path("next")) ?? 0;
  const stopFile = join(dir!, "stop");
  for (;;) {
    if (existsSync(stopFile)) {
      if (client.unacked === 0) break;
      await Bun.sleep(50);
      continue;
    }
    const n = next++;
    writeAtomically(path("next"), JSON.stringify(next)); // an id is never reused, even after a crash
    const id = `${user}-${n}`;
    client.send(peers[n % peers.length]!, `${id}:${"x".repeat(32)}`, { id }).catch((e: { code?: string }) => {
      appendFileSync(path("acks"), `${id} error ${e.code ?? "?"}\n`); // the code for diagnosis (the judge reads two fields)
    });
    await Bun.sleep(intervalMs);
  }
  client.close();
}

interface RecipientState {
  processed: number;
  sdk: IrisSavedState | null;
}

async function recipient(): Promise<void> {
  const statePath = path("state");
  const logPath = path("log");
  const saved = readJson<RecipientState>(statePath) ?? { processed: 0, sdk: null };
  // Keep only what was committed with the state: the lines after it were never "processed".
  if (existsSync(logPath)) {
    const lines = readFileSync(logPath, "utf8").split("\n").filter(Boolean);
    if (lines.length > saved.processed) {
      const keep = lines.slice(0, saved.processed).map((l) => l + "\n").join("");
      truncateSync(logPath, Buffer.byteLength(keep));
    }
  }
  let processed = saved.processed;
  const storage: IrisStorage = {
    load: () => saved.sdk,
    save: (sdk) => writeAtomically(statePath, JSON.stringify({ processed, sdk } satisfies RecipientState)),
  };
  const client = new IrisClient({ urls: url!.split(","), user: user!, storage });
  recordStaleDrops(client, path("stale"));
  client.onMessage((m) => {
    appendFileSync(logPath, `${m.from} ${m.id} ${m.seq}\n`);
    processed++;
  });
  // Its states with the time, for diagnosis: a recipient that ends "replaced" or "closed" gave up
  // (a re-login by SIGUSR2 then does nothing: there is no socket to drop).
  client.onState((st) => appendFileSync(path("states"), `${new Date().toISOString()} ${st}\n`));
  process.on("SIGUSR2", () => client.dropConnection());
  await client.connect();
  await new Promise(() => {}); // runs until the checker kills or stops it
}

/** The fields of a deliver frame this diagnosis reads. */
interface DeliverFrame {
  seq: number;
  from: string;
  id: string;
}

/**
 * Diagnosis (docs/CLUSTER.md, "Losses under CPU starvation"): the SDK silently drops a delivery
 * whose seq is not above its last one, and its cumulative ack then deletes that row. A message
 * delivered below the resume point is lost to the application without any trace in the log, so
 * each such frame is written to `<user>.stale` (from, id, seq, the SDK's last seq) before the SDK
 * sees it. Wraps the SDK's private frame handler: chaos clients only, never the product.
 */
function recordStaleDrops(client: IrisClient, file: string): void {
  const sdk = client as unknown as { deliver(f: DeliverFrame): void };
  const deliver = sdk.deliver.bind(client);
  sdk.deliver = (f) => {
    if (f.seq <= client.lastSeq) appendFileSync(file, `${f.from} ${f.id} ${f.seq} ${client.lastSeq}\n`);
    deliver(f);
  };
}

/**
 * Diagnosis with IRIS_ORDER_TRACE=1 (docs/CLUSTER.md, "a session fence that lapsed"): the sender
 * SDK's view of per-recipient order, one line per frame it puts on the wire, per refusal or ack it
 * reads, and per lane event, in `<user>.trace`, flushed every 200 ms. Wraps the SDK's private
 * methods: chaos clients only, never the product.
 */
function traceSdk(client: IrisClient, file: string): void {
  type Out = { id: string; to: string; inFlight: boolean };
  type Frame = { op: string; id?: string; code?: string; status?: string };
  const sdk = client as unknown as {
    transmit(o: Out): void;
    onFrame(f: Frame): void;
    lanes: {
      refused(o: Out): void;
      reset(): void;
      holds(to: string): boolean;
      open(to: string): void;
      probe(to: string): void;
    };
  };
  const lines: string[] = [];
  const t = () => new Date().toISOString().slice(11, 23);
  const lanes = sdk.lanes;
  const wrap = <K extends string>(o: Record<K, (...a: never[]) => unknown>, k: K, line: (...a: never[]) => string) => {
    const f = o[k].bind(o);
    o[k] = ((...a: never[]) => (lines.push(`${t()} ${line(...a)}`), f(...a))) as never;
  };
  wrap(sdk as never, "transmit", (o: Out) => `tx ${o.id} ${o.to} lane=${lanes.holds(o.to)}`);
  wrap(
    sdk as never,
    "onFrame",
    (f: Frame) =>
      f.op === "error" ? `err ${f.id ?? ""} ${f.code}` : f.op === "sent" ? `ack ${f.id} ${f.status}` : `frame ${f.op}`,
  );
  wrap(lanes as never, "refused", (o: Out) => `lane-refused ${o.id} ${o.to} had=${lanes.holds(o.to)}`);
  wrap(lanes as never, "open", (to: string) => `lane-open ${to}`);
  wrap(lanes as never, "probe", (to: string) => `lane-probe ${to}`);
  wrap(lanes as never, "reset", () => "lane-reset");
  setInterval(() => lines.length && appendFileSync(file, lines.splice(0).join("\n") + "\n"), 200);
}

process.on("SIGTERM", () => process.exit(0));
if (role === "sender") {
  await sender((peersArg ?? "").split(","), Number(intervalArg ?? 20));
  process.exit(0);
} else await recipient();
