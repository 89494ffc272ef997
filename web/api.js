// The one way the dashboard talks to the server: same-origin fetch with the session cookie,
// the CSRF header on writes, and the JSON error envelope turned into an ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

/** Called with the error whenever a request answers 401 (except the login itself). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export const isAbort = (e) => e && e.name === "AbortError";

/** `path` with the non-empty entries of `query` as its query string. */
export function url(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function request(path, { method = "GET", query, body, signal, login = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-Requested-With"] = "growth-stack";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, "network", "Could not reach growth-stack. Is the server running?");
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, "bad_response", `${path} did not answer JSON`);
    }
  }
  if (!res.ok) {
    const env = data && data.error;
    const err = new ApiError(
      res.status,
      (env && env.code) || "http_" + res.status,
      (env && env.message) || `${res.status} ${res.statusText || "error"}`.trim(),
    );
    if (res.status === 401 && !login) unauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path, query, signal) => request(path, { query, signal });

export const login = (token) => request("/api/session", { method: "POST", body: { token }, login: true });
export const logout = () => request("/api/session", { method: "DELETE", login: true });
export const session = (signal) => request("/api/session", { signal });
