// Browser assets served by the binary: the SDK (/sdk/iris-client.js) and the console page. build.ts
// embeds them at compile time (IRIS_EMBEDDED_ASSETS); run from source, they are read from dist/
// when a build has written them there.

import { existsSync, readFileSync } from "node:fs";
import { Hono } from "hono";

export interface Asset {
  type: string;
  body: string;
}

declare const IRIS_EMBEDDED_ASSETS: Record<string, Asset> | undefined;

/** Where each asset lies under dist/ when running from source. */
const FROM_DIST: Record<string, [file: string, type: string]> = {
  "/sdk/iris-client.js": ["dist/sdk/iris-client.js", "text/javascript; charset=utf-8"],
  "/console": ["dist/console/index.html", "text/html; charset=utf-8"],
  "/console/app.js": ["dist/console/app.js", "text/javascript; charset=utf-8"],
};

function loadAssets(): Map<string, Asset> {
  if (typeof IRIS_EMBEDDED_ASSETS !== "undefined") return new Map(Object.entries(IRIS_EMBEDDED_ASSETS));
  const m = new Map<string, Asset>();
  for (const [path, [file, type]] of Object.entries(FROM_DIST)) {
    if (existsSync(file)) m.set(path, { type, body: readFileSync(file, "utf8") });
  }
  return m;
}

/** Routes for the assets; each response carries a content hash as its ETag so reloads are cheap. */
export function assetRoutes(): Hono {
  const assets = loadAssets();
  const app = new Hono();
  for (const [path, a] of assets) {
    const etag = `"${Bun.hash(a.body).toString(36)}"`;
    app.get(path, (c) => {
      if (c.req.header("if-none-match") === etag) return c.body(null, 304);
      const headers: Record<string, string> = { "content-type": a.type, etag, "cache-control": "no-cache" };
      // The SDK is a public static file: pages on other origins may import it as a module.
      if (path.startsWith("/sdk/")) headers["access-control-allow-origin"] = "*";
      return c.body(a.body, 200, headers);
    });
  }
  app.get("/console/", (c) => c.redirect("/console"));
  // Running from source before any build: say how to get the files instead of a bare 404.
  for (const path of Object.keys(FROM_DIST)) {
    if (!assets.has(path)) {
      app.get(path, (c) => c.text(`${path} is built by \`npm run build\` (dist/ has no copy yet)\n`, 404));
    }
  }
  app.get("/favicon.ico", (c) => c.body(null, 204)); // browsers ask; nothing to show

  return app;
}
