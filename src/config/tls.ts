// TLS for the HTTP/WebSocket port and the v0 TCP listener: the certificate and key are read from
// files at start and again on SIGHUP. A reload binds a new listener with the new certificate on
// the same port (SO_REUSEPORT) and only then stops the old one from accepting: connections that
// are open stay open on the old certificate, new ones get the new one.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

export interface TlsSettings {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

export function tlsEnabled(s: TlsSettings): boolean {
  return !!(s.tlsCert && s.tlsKey);
}

/** Reads and checks the pair (parses, and the key belongs to the certificate); throws one line. */
export function loadTls(s: TlsSettings): TlsFiles {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const cert = read(s.tlsCert!, "--tls-cert");
  const key = read(s.tlsKey!, "--tls-key");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`--tls-cert ${s.tlsCert} is not a PEM certificate`);
  }
  let priv;
  try {
    priv = createPrivateKey(key);
  } catch {
    throw new Error(`--tls-key ${s.tlsKey} is not a PEM private key`);
  }
  if (!x509.checkPrivateKey(priv)) throw new Error(`--tls-key ${s.tlsKey} does not belong to --tls-cert ${s.tlsCert}`);
  return { cert, key };
}

/** Options for Bun.serve / Bun.listen, or undefined without TLS. */
export function tlsOptions(s: TlsSettings): TlsFiles | undefined {
  return tlsEnabled(s) ? loadTls(s) : undefined;
}

/** The certificate's SHA-256 fingerprint, for the reload log line. */
export function fingerprint(cert: string): string {
  return new X509Certificate(cert).fingerprint256;
}
