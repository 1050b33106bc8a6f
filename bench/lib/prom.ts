// Reads the server's Prometheus /metrics text. The parser is pure; `scrape` is the one fetch.

export type Samples = Map<string, number>;

/** `name{labels} value` lines into a map keyed by `name{labels}` (labels as written). */
export function parseProm(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/);
    if (!m) continue;
    const v = Number(m[2]);
    if (!Number.isNaN(v)) out.set(m[1]!, v);
  }
  return out;
}

/** A sample by bare name (no labels), or 0 when absent. */
export function metric(s: Samples, name: string): number {
  return s.get(name) ?? 0;
}

export async function scrape(http: string, timeoutMs = 5000): Promise<Samples> {
  const r = await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`GET /metrics: HTTP ${r.status}`);
  return parseProm(await r.text());
}

/** Scrapes, returning null instead of throwing (an external server may not have /metrics). */
export async function tryScrape(http: string | null): Promise<Samples | null> {
  if (!http) return null;
  try {
    return await scrape(http);
  } catch {
    return null;
  }
}
