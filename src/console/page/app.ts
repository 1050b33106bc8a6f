// Console entry: decides whether an admin token is needed, then shows the panes. Without a working
// admin token (when the server has --jwt-secret) nothing but the token form is shown.

import { type Access, currentToken, probeAccess, setToken } from "./api.ts";
import { $ } from "./dom.ts";
import { startOverview } from "./overview.ts";
import { initTryIt } from "./tryit.ts";
import { initUsers } from "./users.ts";

const PANES = ["overview", "users", "try"] as const;

function selectPane(name: (typeof PANES)[number]): void {
  for (const p of PANES) {
    $(`pane-${p}`).hidden = p !== name;
    $(`tab-${p}`).classList.toggle("active", p === name);
  }
}

let stopOverview: (() => void) | null = null;

function showApp(authOn: boolean): void {
  $("auth").hidden = true;
  $("app").hidden = false;
  $("auth-state").textContent = authOn ? "admin token (this tab only)" : "no auth (server without --jwt-secret)";
  $("logout").hidden = !authOn;
  stopOverview = startOverview((why) => {
    // The token stopped working (expired, secret rotated): back to the token form, show nothing.
    stopOverview?.();
    hideApp(`stats failed: ${why}`);
  });
}

function hideApp(why: string): void {
  $("app").hidden = true;
  $("auth").hidden = false;
  $("auth-msg").textContent = why;
}

const REFUSED: Record<Exclude<Access, "open" | "ok">, string> = {
  "need-token": "This server requires an admin token.",
  "not-admin": 'Refused: that token is valid but not an admin token (it needs "role":"admin").',
  "bad-token": "Refused: the server did not accept that token.",
};

function wireAuthForm(): void {
  $("auth-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const candidate = $<HTMLInputElement>("auth-token").value.trim();
    const a = await probeAccess(candidate);
    if (a !== "ok") return hideApp(REFUSED[a === "open" ? "bad-token" : a]);
    setToken(candidate);
    $<HTMLInputElement>("auth-token").value = "";
    showApp(true);
  });
  $("logout").addEventListener("click", () => {
    stopOverview?.();
    setToken(null);
    location.reload();
  });
}

async function start(): Promise<void> {
  for (const p of PANES) $(`tab-${p}`).addEventListener("click", () => selectPane(p));
  selectPane("overview");
  initUsers();
  wireAuthForm();
  const access = await probeAccess(currentToken());
  initTryIt(access !== "open");
  if (access === "open" || access === "ok") return showApp(access === "ok");
  setToken(null);
  hideApp(REFUSED[access]);
}

void start();
