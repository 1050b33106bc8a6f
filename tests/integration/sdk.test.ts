// The packaged SDK (dist/sdk/iris-client.js + .d.ts): served by the binary, free of Bun/Node-only
// imports, usable from Node, type-checked; and its persistence hook across real process kills.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { IrisClient, type IrisMessage } from "../../src/client/index.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const ROOT = resolve(import.meta.dir, "../..");
const SDK = join(ROOT, "dist/sdk/iris-client.js");
const FIXTURE = join(ROOT, "tests/fixtures/sdk-proc.ts");

let server: RunningServer;
let work: string;
beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), "iris-sdk-"));
});
afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  expect(await server.stop()).toBe(0);
});

/** Runs a command to completion; returns its exit code and output. */
async function run(cmd: string[], cwd = work): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  return { code: await p.exited, out: out + err };
}

describe("packaged SDK", () => {
  test("the binary serves the built file; it imports nothing (no node:, bun:, require)", async () => {
    const js = readFileSync(SDK, "utf8");
    const res = await fetch(`${server.http}/sdk/iris-client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("javascript");
    expect(res.headers.get("access-control-allow-origin")).toBe("*"); // importable from any origin
    expect(await res.text()).toBe(js);
    expect(js).not.toMatch(/from\s*["'](node|bun):|import\s*\(\s*["']|\brequire\(/);
    expect(js).toContain("export{");
  });

  test("Node imports it and two clients exchange a message through the server", async () => {
    const major = Number((await run(["node", "-p", "process.versions.node.split('.')[0]"])).out.trim());
    const script = join(work, "node-chat.mjs");
    writeFileSync(
      script,
      `import { IrisClient } from ${JSON.stringify(SDK)};
const a = new IrisClient({ url: ${JSON.stringify(server.url)}, user: "node-a" });
const b = new IrisClient({ url: ${JSON.stringify(server.url)}, user: "node-b" });
const got = new Promise((r) => b.onMessage((m) => r(m.text() + "@" + m.seq)));
await a.connect(); await b.connect();
const status = await a.send("node-b", "from node");
console.log(status, await got); a.close(); b.close(); process.exit(0);`,
    );
    // Node 22+ has WebSocket built in; older Node needs the flag (the test machine may have 20).
    const r = await run(["node", ...(major < 22 ? ["--experimental-websocket"] : []), script]);
    expect(r.out).toMatch(/^delivered from node@\d+$/m);
    expect(r.code).toBe(0);
  });

  test("the .d.ts types check a consumer and reject a wrong call", async () => {
    const dir = join(work, "types");
    cpSync(join(ROOT, "dist/sdk"), dir, { recursive: true });
    const options = { strict: true, noEmit: true, target: "ES2022", module: "ESNext", types: [] };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["app.ts"] }));
    // One compile proves both: the good calls check, and the wrong call must be an error, since an
    // unused expect-error directive is itself an error (types that were missing or `any` fail here).
    const expectError = "// @ts-" + "expect-error: send needs a recipient and a body";
    writeFileSync(
      join(dir, "app.ts"),
      `import { IrisClient, webStorage, type IrisMessage, type SendStatus } from "./iris-client.js";
const c = new IrisClient({ url: "ws://x/ws", user: "u", storage: webStorage(sessionStorage, "k") });
c.onMessage((m: IrisMessage) => console.log(m.seq, m.text()));
const s: Promise<SendStatus> = c.send("v", "hi");
${expectError}
c.send(42);
export { s };`,
    );
    const tsc = [process.execPath, join(ROOT, "node_modules/typescript/lib/tsc.js"), "-p", dir];
    expect(await run(tsc)).toEqual({ code: 0, out: "" });
  }, 60_000);
});

/** Starts the fixture with the built SDK; lines of its stdout as they come. */
function proc(args: string[]) {
  const p = Bun.spawn([process.execPath, FIXTURE, ...args], { stdout: "pipe", stderr: "pipe" });
  const lines: string[] = [];
  void (async () => {
    const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      const parts = (buf + r.value).split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return { p, lines, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** The lines a recipient fixture logged: "from id seq body". */
const logged = (file: string) =>
  readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => l.split(" ")) as string[][];

describe("SDK persistence across process restarts", () => {
  test("a recipient killed and restarted from its saved state sees no duplicate and loses nothing", async () => {
    const sender = new IrisClient({ url: server.url, user: "p-sender" });
    await sender.connect();
    const total = 120;
    // Two recipients killed after 40 messages with nothing acked: one restarts from its state file,
    // the other (the control) without, which must see the 40 again: the check can fail.
    const runs = [{ user: "p-recv", state: join(work, "recv.json") }, { user: "p-ctrl", state: "-" }];
    for (const r of runs) {
      const log = join(work, `${r.user}.log`);
      const first = proc(["recv", server.url, r.user, r.state, log, "40"]);
      await until(() => first.lines.length > 0, `${r.user} logged in`);
      for (let i = 0; i < 60; i++) void sender.send(r.user, `m${i}`);
      expect(await first.p.exited).toBe(137); // SIGKILLed itself after 40
      const before = logged(log).length; // what the app processed before the kill (>= 40)
      const second = proc(["recv", server.url, r.user, r.state, log, "0"]);
      await until(() => second.lines.length > 0, `${r.user} back`);
      for (let i = 60; i < total; i++) void sender.send(r.user, `m${i}`);
      const got = () => logged(log).length;
      await until(() => got() >= (r.state === "-" ? total + before : total), `${r.user}'s messages`, 15_000);
      await Bun.sleep(200); // a duplicate arriving late would show up here
      second.p.kill("SIGKILL");
      await second.p.exited;
      const bodies = logged(log).map((l) => l[3]);
      if (r.state === "-") {
        expect(before).toBeGreaterThanOrEqual(40);
        expect(bodies.length).toBe(total + before); // without persistence they all come back
        continue;
      }
      expect(bodies).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
      expect(JSON.parse(second.lines[0]!).resumeFrom).toBeGreaterThanOrEqual(40);
    }
    sender.close();
  }, 40_000);

  test("a sender killed with unacked sends resends them with the same ids after a restart", async () => {
    const state = join(work, "send.json");
    const count = 200;
    const first = proc(["send", server.url, "p-snd", "p-off", state, String(count), "30"]);
    expect(await first.p.exited).toBe(137); // killed on its 30th ack, the rest unread
    const saved = JSON.parse(readFileSync(state, "utf8")) as { unacked: { id: string }[] };
    const savedIds = saved.unacked.map((u) => u.id);
    expect(savedIds.length).toBe(count - 30);
    copyFileSync(state, `${state}.before-restart`);

    const second = proc(["send", server.url, "p-snd", "p-off", state, "0", "0"]);
    expect(await second.p.exited).toBe(0);
    const out = second.json();
    expect(out[0]).toEqual({ restored: count - 30 });
    const acked = out.filter((o) => typeof o.id === "string");
    expect(acked.map((o) => o.id).sort()).toEqual([...savedIds].sort());
    // The server had most of them already: same ids, so it answers duplicate instead of storing twice.
    expect(acked.some((o) => o.status === "duplicate")).toBe(true);
    expect(out.at(-1)).toEqual({ done: true, unacked: 0 });

    const r = new IrisClient({ url: server.url, user: "p-off" });
    const got: IrisMessage[] = [];
    r.onMessage((m) => got.push(m));
    await r.connect();
    await until(() => got.length >= count, "the offline recipient's inbox", 15_000);
    await Bun.sleep(200);
    expect(got.map((m) => m.text())).toEqual(Array.from({ length: count }, (_, i) => `b${i}`));
    const idsAfterKill = got.slice(30).map((m) => m.id);
    expect(idsAfterKill).toEqual(savedIds);
    r.close();
  }, 40_000);
});
