// The console's calls to the admin API, with the admin token when the server requires one. The
// token lives in this tab only: memory plus sessionStorage (gone when the tab closes).

const TOKEN_KEY = "iris-console-admin-token";

let token: string | null = sessionStorage.getItem(TOKEN_KEY);

export type ApiResult<T> = { ok: true; body: T } | { ok: false; status: number; error: string; reason: string };

export async function api<T>(method: string, path: string, withToken = token): Promise<ApiResult<T>> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: withToken ? { authorization: `Bearer ${withToken}` } : {} });
  } catch (e) {
    return { ok: false, status: 0, error: "NETWORK", reason: (e as Error).message };
  }
  const body = await res.json().catch(() => ({})) as Record<string, string>;
  if (res.ok) return { ok: true, body: body as T };
  return { ok: false, status: res.status, error: body.error ?? "HTTP", reason: body.reason ?? res.statusText };
}

/** What the server says about access: open, or which token problem there is. */
export type Access = "open" | "ok" | "need-token" | "not-admin" | "bad-token";

export async function probeAccess(candidate: string | null): Promise<Access> {
  const r = await api("GET", "/v1/stats", candidate);
  if (r.ok) return candidate ? "ok" : "open";
  if (r.status === 403) return "not-admin";
  if (r.status === 401) return candidate ? "bad-token" : "need-token";
  throw new Error(`${r.error}: ${r.reason}`);
}

export function setToken(t: string | null): void {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function currentToken(): string | null {
  return token;
}
