// The browser SDK's persistence hook across a page reload, in real headless Chromium: a page
// using webStorage(localStorage) reloads with nothing acked to the server and sees no message
// twice; the same page without storage (the control) sees them again, so the check can fail.

import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { IrisClient } from "../../src/client/index.ts";
import { type Browser, launchBrowser } from "../helpers/browser.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer;
let browser: Browser;
let sender: IrisClient;
beforeAll(async () => {
  server = await startServer();
  browser = await launchBrowser();
  sender = new IrisClient({ url: server.url, user: "rl-sender" });
  await sender.connect();
});
afterAll(async () => {
  sender.close();
  await browser.close();
  expect(await server.stop()).toBe(0);
});

/** Starts an app in the page: the served SDK, acks held back a minute, bodies collected in `got`. */
async function startApp(page: Page, user: string, persist: boolean): Promise<number> {
  return await page.evaluate(async ({ user, persist }) => {
    const sdk = await import(`${location.origin}/sdk/iris-client.js`);
    const w = window as unknown as { got: string[] };
    w.got = [];
    const c = new sdk.IrisClient({
      url: `ws://${location.host}/ws`,
      user,
      ackDelayMs: 60_000,
      ...(persist ? { storage: sdk.webStorage(localStorage, `iris:${user}`) } : {}),
    });
    c.onMessage((m: { text(): string }) => w.got.push(m.text()));
    await c.connect();
    return c.lastSeq as number;
  }, { user, persist });
}

const got = (page: Page) => page.evaluate(() => (window as unknown as { got: string[] }).got);

test("after a reload the page resumes past what it processed: no duplicate, nothing lost", async () => {
  for (const [user, persist] of [["rl-bob", true], ["rl-ctrl", false]] as const) {
    const page = await browser.ctx.newPage();
    await page.goto(`${server.http}/healthz`); // any page of this origin can import the SDK
    await startApp(page, user, persist);
    for (let i = 0; i < 5; i++) void sender.send(user, `m${i}`);
    await until(async () => (await got(page)).length === 5, `${user}: 5 before the reload`);

    await page.reload(); // nothing was acked: the ack delay is a minute
    const resumedFrom = await startApp(page, user, persist);
    for (let i = 5; i < 8; i++) void sender.send(user, `m${i}`);
    await until(async () => (await got(page)).includes("m7"), `${user}: the messages after the reload`);
    await Bun.sleep(300); // a late duplicate would show up here
    const after = await got(page);
    if (persist) {
      expect(resumedFrom).toBeGreaterThanOrEqual(5);
      expect(after).toEqual(["m5", "m6", "m7"]);
    } else {
      expect(after).toEqual(["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]); // all back again
    }
    await page.close();
  }
}, 30_000);
