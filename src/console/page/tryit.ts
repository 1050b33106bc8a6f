// The "Try it" pane: two users chat through this server with the browser SDK, loaded from
// /sdk/iris-client.js when the pane is first used (so it is not part of the console's first load).
// Each sent message shows its ack ("delivered" / "stored") as it comes; each received one its seq.

import { $, el } from "./dom.ts";

// The part of the SDK this pane uses. Declared here rather than imported: the console sits below
// the client layer, and this keeps the pane to the SDK's public surface.
interface IrisMessage {
  seq: number;
  from: string;
  text(): string;
}
interface IrisClient {
  onMessage(h: (m: IrisMessage) => void): unknown;
  onState(h: (s: string) => void): unknown;
  connect(): Promise<void>;
  send(to: string, body: string, opts: { id: string }): Promise<string>;
  close(): void;
}
interface Sdk {
  IrisClient: new (o: { url: string; user: string; token?: string }) => IrisClient;
}
const SDK_URL = "/sdk/iris-client.js";

interface Side {
  key: "a" | "b";
  client: IrisClient | null;
}
const sides: Side[] = [{ key: "a", client: null }, { key: "b", client: null }];
let sdk: Promise<Sdk> | null = null;

const wsUrl = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const userOf = (s: Side) => $<HTMLInputElement>(`try-${s.key}-user`).value.trim();
const other = (s: Side) => sides[s.key === "a" ? 1 : 0]!;
/** Message ids: unique enough per tab, and usable outside secure contexts (no crypto.randomUUID). */
const newId = () => `try-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

function logLine(s: Side, li: HTMLLIElement): void {
  const log = $(`try-${s.key}-log`);
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

function received(s: Side, m: IrisMessage): void {
  logLine(
    s,
    el(
      "li",
      { class: "in", "data-seq": String(m.seq) },
      `← ${m.from}: ${m.text()}`,
      el("span", { class: "seq" }, `seq ${m.seq}`),
    ),
  );
}

async function connectSide(mod: Sdk, s: Side): Promise<void> {
  s.client?.close();
  const token = $<HTMLInputElement>(`try-${s.key}-token`).value.trim();
  const c = new mod.IrisClient({ url: wsUrl(), user: userOf(s), ...(token ? { token } : {}) });
  c.onMessage((m) => received(s, m));
  c.onState((st) => ($(`try-${s.key}-state`).textContent = st));
  s.client = c;
  await c.connect();
}

async function connectBoth(): Promise<void> {
  const status = $("try-status");
  status.textContent = "connecting…";
  try {
    sdk ??= import(SDK_URL) as Promise<Sdk>;
    const mod = await sdk;
    await Promise.all(sides.map((s) => connectSide(mod, s)));
    status.textContent = `connected as ${userOf(sides[0]!)} and ${userOf(sides[1]!)}`;
  } catch (e) {
    status.textContent = `could not connect: ${(e as Error).message}`;
  }
}

async function send(s: Side): Promise<void> {
  const input = $<HTMLInputElement>(`try-${s.key}-text`);
  const text = input.value;
  if (!s.client || text === "") return;
  input.value = "";
  const id = newId();
  const status = el("span", { class: "status" }, "sending…");
  logLine(s, el("li", { class: "out", "data-id": id }, `→ ${userOf(other(s))}: ${text}`, status));
  try {
    status.textContent = await s.client.send(userOf(other(s)), text, { id });
  } catch (e) {
    status.textContent = `error: ${(e as Error).message}`;
  }
  status.dataset.final = "1";
}

export function initTryIt(needsTokens: boolean): void {
  for (const s of sides) {
    $(`try-${s.key}-token`).hidden = !needsTokens;
    $(`try-${s.key}-form`).addEventListener("submit", (e) => {
      e.preventDefault();
      void send(s);
    });
  }
  $("try-connect").addEventListener("click", () => void connectBoth());
}
