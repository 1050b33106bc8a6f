// Main-thread side of TLS: the SIGHUP reload (checked here first, so a bad new pair never reaches
// the shards) and the start-up warning for tokens sent in clear text.

import { authEnabled } from "../auth/verifier.ts";
import { isLoopback } from "../config/load.ts";
import type { Settings } from "../config/schema.ts";
import { log } from "../observe/log.ts";
import { describeError } from "../observe/errors.ts";
import { fingerprint, loadTls, tlsEnabled } from "../config/tls.ts";

export function reloadTls(settings: Settings, shards: { reloadTls(): void }): void {
  if (!tlsEnabled(settings)) {
    log.info("SIGHUP: no --tls-cert configured, nothing to reload");
    return;
  }
  try {
    const files = loadTls(settings);
    shards.reloadTls();
    log.info("SIGHUP: reloading the tls certificate", { cert: settings.tlsCert, sha256: fingerprint(files.cert) });
  } catch (e) {
    log.error("SIGHUP: new tls certificate refused; keeping the old one", { error: describeError(e) });
  }
}

/** A non-loopback address with auth but no TLS sends tokens and messages in clear text. */
export function warnIfCleartext(settings: Settings): void {
  if (isLoopback(settings.host) || !authEnabled(settings) || tlsEnabled(settings)) return;
  log.warn("serving without TLS on a non-loopback address: tokens and messages travel in clear text", {
    host: settings.host,
    fix: "set --tls-cert and --tls-key, or terminate TLS in a proxy in front",
  });
}
