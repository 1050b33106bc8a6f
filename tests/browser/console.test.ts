// The console in real headless Chromium against the real binary: live connection count, the
// "Try it" chat through the browser SDK, user lookup and purge, the admin-token gate, and the size
// of the first load. Saves a screenshot of the overview under load to tests/artifacts/ (gitignored).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { signToken } from "../../src/auth/jwt.ts";
import { IrisClient } from "../../src/client/index.ts";
import { type Browser, launchBrowser } from "../helpers/browser.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const ARTIFACTS = resolve(import.meta.dir, "../artifacts");
const FIRST_LOAD_BUDGET = 200 * 1024;

const text = (page: Page, sel: string) => page.locator(sel).first().textContent().then((t) => (t ?? "").trim());

describe("console (no auth)", () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.ctx.newPage();
  });
  afterAll(async () => {
    await browser.close();
    expect(await server.stop()).toBe(0);
  });

  test("first load is under 200 KB and needs nothing but this server", async () => {
    const outside: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(server.http)) outside.push(r.url());
    });
    await page.goto(`${server.http}/console`);
    await until(async () => (await text(page, "[data-fig=connections]")) === "0", "the first figures");
    const bytes = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      const res = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
      const scripts = res.filter((r) => r.initiatorType === "script" || r.initiatorType === "link");
      return nav.decodedBodySize + scripts.reduce((a, r) => a + r.decodedBodySize, 0);
    });
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThan(FIRST_LOAD_BUDGET);
    expect(outside).toEqual([]);
  });

  test("the connection count rises as clients connect and falls as they leave (screenshot under load)", async () => {
    const clients = Array.from({ length: 6 }, (_, i) => new IrisClient({ url: server.url, user: `ov-${i}` }));
    await Promise.all(clients.map((c) => c.connect()));
    await until(async () => (await text(page, "[data-fig=connections]")) === "6", "6 connections shown", 5000);
    // Load for a few refreshes so the rate charts have something to draw.
    const end = Date.now() + 3500;
    while (Date.now() < end) {
      await Promise.all(clients.map((c, i) => c.send(`ov-${(i + 1) % 6}`, `load ${Date.now()}`)));
    }
    await until(async () => Number(await text(page, "[data-fig=msgsIn]")) > 0, "a message rate", 3000);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "console-overview-under-load.png") });
    for (const c of clients) c.close();
    await until(async () => (await text(page, "[data-fig=connections]")) === "0", "0 connections shown", 5000);
  }, 30_000);

  test("try it: two browser users chat both ways and each send shows delivered", async () => {
    await page.click("#tab-try");
    await page.fill("#try-a-user", "tryer-a");
    await page.fill("#try-b-user", "tryer-b");
    await page.click("#try-connect");
    await until(async () => (await text(page, "#try-status")).startsWith("connected"), "both connected");
    for (const [from, to] of [["a", "b"], ["b", "a"]] as const) {
      await page.fill(`#try-${from}-text`, `hello from ${from}`);
      await page.press(`#try-${from}-text`, "Enter");
      const status = `#try-${from}-log li.out .status[data-final]`;
      await until(async () => (await page.locator(status).count()) === 1, `${from}'s ack`);
      expect(await text(page, status)).toBe("delivered");
      const got = page.locator(`#try-${to}-log li.in`);
      await until(async () => (await got.count()) === 1, `${to} receives`);
      expect(await got.textContent()).toContain(`hello from ${from}`);
      expect(Number(await got.getAttribute("data-seq"))).toBeGreaterThan(0);
      expect(await text(page, `#try-${to}-log li.in .seq`)).toMatch(/^seq \d+$/);
    }
  }, 20_000);

  test("users: an offline user's inbox depth is shown; purge (confirmed) empties it", async () => {
    const s = new IrisClient({ url: server.url, user: "lk-sender" });
    await s.connect();
    for (let i = 0; i < 3; i++) expect(await s.send("lk-off", `m${i}`)).toBe("stored");
    s.close();
    await page.click("#tab-users");
    await page.fill("#user-id", "lk-off");
    await page.click("#user-form button[type=submit]");
    await until(async () => (await text(page, "[data-user=depth]")) === "3", "depth 3");
    expect(await text(page, "[data-user=online]")).toBe("offline");
    const dialogs: string[] = [];
    page.once("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.click("#user-purge");
    await until(async () => (await text(page, "[data-user=depth]")) === "0", "depth 0 after purge");
    expect(dialogs[0]).toContain("lk-off");
    expect(await text(page, "#user-msg")).toBe("purged 3 messages of lk-off");
    const api = await (await fetch(`${server.http}/v1/users/lk-off`)).json();
    expect(api.inbox.depth).toBe(0);

    const on = new IrisClient({ url: server.url, user: "lk-on" });
    await on.connect();
    await page.fill("#user-id", "lk-on");
    await page.click("#user-form button[type=submit]");
    await until(async () => (await text(page, "[data-user=name]")) === "lk-on", "the online user");
    expect(await text(page, "[data-user=online]")).toMatch(/^online \(shard \d+, (idle|live|fetching|writing)\)$/);
    on.close();
  }, 20_000);
});

describe("console with --jwt-secret", () => {
  const SECRET = "console-secret-0123456789";
  const tok = (sub: string, role?: string) =>
    signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 300, ...(role ? { role } : {}) });
  let server: RunningServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startServer({ env: { IRIS_JWT_SECRET: SECRET } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser.close();
    await server.stop();
  });

  test("no figure before an admin token; a non-admin token is refused; the token stays in the tab", async () => {
    const page = await browser.ctx.newPage();
    await page.goto(`${server.http}/console`);
    await page.locator("#auth").waitFor({ state: "visible" });
    await Bun.sleep(1500); // a refresh or more: still nothing may show
    expect(await page.locator("#app").isVisible()).toBe(false);
    expect(await text(page, "[data-fig=connections]")).toBe("");
    expect(await text(page, "#auth-msg")).toContain("requires an admin token");

    await page.fill("#auth-token", tok("ann"));
    await page.click("#auth-form button[type=submit]");
    await until(async () => (await text(page, "#auth-msg")).includes("not an admin token"), "refusal");
    await Bun.sleep(1200);
    expect(await page.locator("#app").isVisible()).toBe(false);
    expect(await text(page, "[data-fig=connections]")).toBe("");

    const admin = tok("ops", "admin");
    await page.fill("#auth-token", admin);
    await page.click("#auth-form button[type=submit]");
    await until(async () => (await text(page, "[data-fig=connections]")) === "0", "figures with the admin token");
    expect(await page.locator("#app").isVisible()).toBe(true);
    const stored = await page.evaluate(() => ({ s: Object.values(sessionStorage), l: Object.values(localStorage) }));
    expect(stored.s).toContain(admin);
    expect(stored.l).not.toContain(admin);
    await page.close();
  }, 20_000);
});
