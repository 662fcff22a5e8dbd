// The UI's only way to the server: the public /api/v2 endpoints with the session's key.
// GETs remember each answer's ETag and send If-None-Match, so polling an unchanged
// view costs a 304 with no body and no re-render (`changed` is false).

const KEY = "slipstream.key";
const WHO = "slipstream.who";
const cache = new Map(); // url -> {etag, data}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get who() { return JSON.parse(sessionStorage.getItem(WHO) || "null"); },
  save(key, who) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(WHO, JSON.stringify(who));
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WHO);
    cache.clear();
  },
};

const ROLES = ["viewer", "user", "op", "admin"];

export function may(role) {
  const who = session.who;
  return !!who && ROLES.indexOf(who.role) >= ROLES.indexOf(role);
}

function detail(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
  return `HTTP ${status}`;
}

// A list value repeats its name (update_mask=a&update_mask=b), as the API reads lists.
function queryString(query) {
  if (query instanceof URLSearchParams) return query;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) params.append(name, one);
  }
  return params;
}

async function send(method, path, { body, query, key } = {}) {
  const url = "/api/v2" + path + (query ? "?" + queryString(query) : "");
  const headers = { Accept: "application/json" };
  const token = key || session.key;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const cached = method === "GET" ? cache.get(url) : undefined;
  if (cached) headers["If-None-Match"] = cached.etag;
  const response = await fetch(url, {
    method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 304 && cached) return { data: cached.data, changed: false };
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && !key) window.dispatchEvent(new Event("slipstream:signed-out"));
    throw new ApiError(response.status, detail(data, response.status));
  }
  const etag = response.headers.get("ETag");
  if (method === "GET" && etag) cache.set(url, { etag, data });
  return { data, changed: true };
}

export const api = {
  get: (path, query) => send("GET", path, { query }),
  post: (path, body) => send("POST", path, { body }),
  put: (path, body) => send("PUT", path, { body }),
  patch: (path, body, query) => send("PATCH", path, { body, query }),
  delete: (path) => send("DELETE", path),
  whoami: (key) => send("GET", "/slipstream/session", { key }),
  exchange: (code) => send("POST", "/slipstream/session", { body: { code } }),
};

export const enc = encodeURIComponent;

// Calls `tick` now and every `ms` while the view is shown; returns a stop function.
// A hidden tab skips its turns: many open tabs do not hammer the API.
export function poll(tick, ms = 3000) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await tick(); } catch (e) { console.warn(e); }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}
