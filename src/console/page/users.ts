// The users pane: look a user up; disconnect them or purge their inbox, each after confirmation.

import { api } from "./api.ts";
import { $ } from "./dom.ts";

interface UserView {
  user: string;
  online: boolean;
  where: { shard: number } | null;
  phase: string;
  lastSeen: number | null;
  inbox: { depth: number; bytes: number; oldestTs: number | null; oldestAgeMs: number | null };
  pendingDeliveries: number;
  heldBack: number;
  purgedRows?: number;
  disconnected?: boolean;
}

function age(ms: number | null): string {
  if (ms === null) return "–";
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

function show(v: UserView): void {
  const set = (k: string, t: string) => {
    const e = document.querySelector<HTMLElement>(`[data-user="${k}"]`);
    if (e) e.textContent = t;
  };
  set("name", v.user);
  set("online", v.online ? `online (shard ${v.where?.shard}, ${v.phase})` : "offline");
  set("lastSeen", v.lastSeen ? new Date(v.lastSeen).toLocaleString() : "–");
  set("depth", String(v.inbox.depth));
  set("bytes", `${v.inbox.bytes} B`);
  set("oldest", age(v.inbox.oldestAgeMs));
  set("pending", String(v.pendingDeliveries + v.heldBack));
  $("user-result").hidden = false;
}

function message(text: string, bad = false): void {
  const m = $("user-msg");
  m.textContent = text;
  m.classList.toggle("bad", bad);
}

async function call(method: string, path: string, done: (v: UserView) => string): Promise<void> {
  const r = await api<UserView>(method, path);
  if (!r.ok) {
    $("user-result").hidden = r.status === 404 || r.status === 400 ? true : $("user-result").hidden;
    return message(`${r.error}: ${r.reason}`, true);
  }
  show(r.body);
  message(done(r.body));
}

export function initUsers(): void {
  const input = $<HTMLInputElement>("user-id");
  const path = () => `/v1/users/${encodeURIComponent(input.value.trim())}`;
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void call("GET", path(), (v) => `looked up ${v.user}`);
  });
  $("user-disconnect").addEventListener("click", () => {
    const u = input.value.trim();
    if (!u || !confirm(`Disconnect ${u}? Their client may reconnect.`)) return;
    void call("POST", `${path()}/disconnect`, (v) => v.disconnected ? `disconnected ${u}` : `${u} was not connected`);
  });
  $("user-purge").addEventListener("click", () => {
    const u = input.value.trim();
    if (!u || !confirm(`Delete every stored message of ${u}? This cannot be undone.`)) return;
    void call("DELETE", `${path()}/inbox`, (v) => `purged ${v.purgedRows ?? 0} messages of ${u}`);
  });
}
