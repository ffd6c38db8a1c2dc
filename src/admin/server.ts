/**
 * Admin HTTP endpoint, loopback by default: /metrics (Prometheus), /healthz (the process
 * answers), /readyz (connected, policy loaded, active, signer up), /status (JSON), GET /nodes and
 * /nodes/{identity} (read-only), and the POSTs /pause, /resume, /nodes/{action},
 * /broker-sets/{name}/clear and /rollout/{accept,revert} guarded by a
 * bearer token. Without a configured token the POSTs are refused: an unguarded switch that
 * stops provisioning or configures nodes is not a safe default. schemas/admin-api.openapi.json
 * documents every route.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { Registry } from "prom-client";

/** GET /nodes query parameters, as the node registry filters */
export interface NodesQuery {
  state?: string;
  identity?: string;
  policyVersion?: string;
  brokerSet?: string;
}

/** POST /nodes/{action}'s body after checking, with who asked and from where */
export interface NodesAction {
  action: string;
  identities: string[];
  filter?: NodesQuery;
  confirm?: boolean;
  reason?: string;
  operator: string;
  from: string;
}

/** the node registry and operator actions (provision/'s Provisioner) */
export interface NodesTarget {
  list(q: NodesQuery): Iterable<object>;
  show(identity: string): object | undefined;
  act(a: NodesAction): Promise<Array<{ result: string }>>;
}

export const NODE_ACTIONS = ["approve", "deny", "retry", "clear", "forget"];

export interface AdminTarget {
  status(): { ready: boolean } & Record<string, unknown>;
  pause(): void;
  resume(): void;
  nodes?: NodesTarget;
  /** the certificate lifecycle, when the CA keeps a ledger */
  ca?: AdminCa;
  /** arrival tracking: an operator declares a broker set healthy again; returns how many sets were cleared */
  clearBrokerSet?(name: string): number;
  /** guarded rollout: accept the failed or on-trial version, or revert to the trusted one */
  rollout?(action: "accept" | "revert"): unknown;
}

export interface AdminCa {
  /** the CRL PEM, or undefined when the CA publishes none here (cfssl, exec) */
  crl(): string | undefined;
  /** revokes by serial or identity; returns the serials newly revoked; AdminRequestError for a bad body, AdminUnavailableError when it could not be shared */
  revoke(body: { serial?: unknown; identity?: unknown; reason?: unknown }): string[] | Promise<string[]>;
}


export interface AdminOptions {
  listen: string;
  token?: string;
  /** with a token, listen on a non-loopback address anyway (admin.allow_remote) */
  allowRemote?: boolean;
  registry: Registry;
  target: AdminTarget;
}

export interface AdminServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, code: number, body: unknown, type = "application/json"): void {
  const text = typeof body === "string" ? body : JSON.stringify(body, null, 2) + "\n";
  res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
  res.end(text);
}

function authorised(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return false;
  const h = req.headers.authorization ?? "";
  const given = Buffer.from(h.startsWith("Bearer ") ? h.slice(7) : "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** a request the caller must fix (400); the daemon's handlers (AdminCa) throw it too */
export class AdminRequestError extends Error {}
/** the action is done only in part and will complete by itself (503: the caller need not repeat it) */
export class AdminUnavailableError extends Error {}
const BadRequest = AdminRequestError;

const MAX_BODY = 1 << 20;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new BadRequest(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new BadRequest(`request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new BadRequest("request body must be a JSON object");
  return v as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new BadRequest(`${key} must be a string`);
  return v;
}

function queryOf(get: (k: string) => string | null | undefined): NodesQuery {
  const q: NodesQuery = {};
  const state = get("state");
  const identity = get("identity");
  const policyVersion = get("policy_version") ?? get("policyVersion");
  const brokerSet = get("broker_set") ?? get("brokerSet");
  if (state) q.state = state;
  if (identity) q.identity = identity;
  if (policyVersion) q.policyVersion = policyVersion;
  if (brokerSet) q.brokerSet = brokerSet;
  return q;
}

/** checks POST /nodes/{action}'s body: identities and/or a filter, and the action's own fields */
export function actionOf(action: string, body: Record<string, unknown>, from: string): NodesAction {
  const ids = body.identities ?? [];
  if (!Array.isArray(ids) || !ids.every((i) => typeof i === "string" && i !== "")) throw new BadRequest("identities must be a list of node identities");
  let filter: NodesQuery | undefined;
  if (body.filter !== undefined) {
    if (typeof body.filter !== "object" || body.filter === null || Array.isArray(body.filter)) throw new BadRequest("filter must be an object (state, identity, policyVersion, brokerSet)");
    const f = body.filter as Record<string, unknown>;
    filter = queryOf((k) => stringField(f, k));
  }
  if (ids.length === 0 && !filter) throw new BadRequest("name the nodes: identities, or a filter");
  if (body.confirm !== undefined && typeof body.confirm !== "boolean") throw new BadRequest("confirm must be true or false");
  const reason = stringField(body, "reason");
  if (action === "deny" && !reason) throw new BadRequest("deny needs a reason");
  const a: NodesAction = { action, identities: ids as string[], operator: stringField(body, "operator") || "admin-token", from };
  if (filter) a.filter = filter;
  if (body.confirm === true) a.confirm = true;
  if (reason !== undefined) a.reason = reason;
  return a;
}

/** listen addresses only this host can reach: 127.0.0.0/8, ::1, localhost */
export function isLoopbackListen(listen: string): boolean {
  return isLoopback(parseListen(listen).host);
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  if (i < 0) throw new Error(`admin listen ${JSON.stringify(listen)} must be host:port`);
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`admin listen ${JSON.stringify(listen)} has a bad port`);
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

/** loopback names and addresses: 127.0.0.0/8, ::1, localhost */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\./.test(host);
}

export async function startAdminServer(o: AdminOptions): Promise<AdminServer> {
  const { host, port } = parseListen(o.listen);
  // the token travels in clear HTTP: a guarded endpoint on another address is a choice to make explicitly
  if (o.token && !o.allowRemote && !isLoopback(host)) throw new Error(`admin listen ${JSON.stringify(o.listen)} is not a loopback address and an admin token is set: the token would travel in clear over the network; listen on 127.0.0.1 (behind a TLS proxy) or set admin.allow_remote: true`);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const path = url.pathname;
    void (async () => {
      try {
        if (req.method === "GET" && path === "/metrics") return send(res, 200, await o.registry.metrics(), o.registry.contentType);
        if (req.method === "GET" && path === "/healthz") return send(res, 200, { ok: true });
        if (req.method === "GET" && path === "/readyz") {
          const s = o.target.status();
          // with PKI, a signer that does not answer makes the daemon unready, and says so
          return send(res, s.ready ? 200 : 503, s.signer === undefined ? { ready: s.ready } : { ready: s.ready, signer: s.signer });
        }
        if (req.method === "GET" && path === "/status") return send(res, 200, o.target.status());
        if (path === "/pause" || path === "/resume") {
          if (req.method !== "POST") return send(res, 405, { error: "use POST" });
          if (!o.token) return send(res, 403, { error: "pause/resume disabled: no admin token configured" });
          if (!authorised(req, o.token)) return send(res, 401, { error: "bad or missing bearer token" });
          if (path === "/pause") o.target.pause();
          else o.target.resume();
          return send(res, 200, { paused: path === "/pause" });
        }
        if (path === "/ca/crl" && req.method === "GET") {
          // a CRL is public by design: relying parties fetch it without credentials
          const ca = o.target.ca;
          const crl = ca?.crl();
          if (!crl) return send(res, 404, { error: ca ? "this CA publishes no CRL here (cfssl and exec signers: their CA does)" : "no certificate ledger: revocation is off" });
          return send(res, 200, crl, "application/x-pem-file");
        }
        if (path === "/ca/revoke") {
          if (req.method !== "POST") return send(res, 405, { error: "use POST" });
          if (!o.token) return send(res, 403, { error: "revocation disabled: no admin token configured" });
          if (!authorised(req, o.token)) return send(res, 401, { error: "bad or missing bearer token" });
          if (!o.target.ca) return send(res, 404, { error: "no certificate ledger: revocation is off" });
          try {
            return send(res, 200, { revoked: await o.target.ca.revoke(await readJson(req)) });
          } catch (e) {
            if (e instanceof AdminUnavailableError) return send(res, 503, { error: e.message });
            throw e;
          }
        }
        const clear = /^\/broker-sets\/([^/]+)\/clear$/.exec(path);
        const rollout = /^\/rollout\/(accept|revert)$/.exec(path);
        if (clear || rollout) {
          if (req.method !== "POST") return send(res, 405, { error: "use POST" });
          if (!o.token) return send(res, 403, { error: `${path} disabled: no admin token configured` });
          if (!authorised(req, o.token)) return send(res, 401, { error: "bad or missing bearer token" });
          if (clear) {
            if (!o.target.clearBrokerSet) return send(res, 404, { error: "arrival tracking is off" });
            const name = decodeURIComponent(clear[1]!);
            const n = o.target.clearBrokerSet(name);
            return send(res, n ? 200 : 404, n ? { cleared: name, sets: n } : { error: `broker set ${name} is not unhealthy` });
          }
          if (!o.target.rollout) return send(res, 404, { error: "arrival tracking is off" });
          try {
            return send(res, 200, o.target.rollout(rollout![1] as "accept" | "revert"));
          } catch (e) {
            return send(res, 409, { error: (e as Error).message });
          }
        }
        const nodes = o.target.nodes;
        if (nodes && (path === "/nodes" || path.startsWith("/nodes/"))) return await nodeRoute(req, res, path, url, nodes, o.token);
        send(res, 404, { error: `no such endpoint ${path}` });
      } catch (e) {
        if (e instanceof BadRequest) return send(res, 400, { error: e.message });
        send(res, 500, { error: (e as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === "object" && addr ? addr.port : port;
  const h = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${h}:${actual}`,
    port: actual,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function nodeRoute(req: IncomingMessage, res: ServerResponse, path: string, url: URL, nodes: NodesTarget, token: string | undefined): Promise<void> {
  const rest = decodeURIComponent(path.slice("/nodes/".length));
  if (req.method === "GET") {
    if (path === "/nodes") {
      const list = nodes.list(queryOf((k) => url.searchParams.get(k)));
      if (url.searchParams.get("format") === "jsonl") {
        res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
        // one write per thousand nodes: a write per line made 100k nodes take seconds
        let chunk = "";
        let lines = 0;
        for (const n of list) {
          chunk += JSON.stringify(n) + "\n";
          if (++lines % 1000 === 0) {
            res.write(chunk);
            chunk = "";
          }
        }
        res.end(chunk);
        return;
      }
      const all = [...list];
      return send(res, 200, { count: all.length, nodes: all });
    }
    const detail = nodes.show(rest);
    return detail ? send(res, 200, detail) : send(res, 404, { error: `no node ${JSON.stringify(rest)} known to this instance` });
  }
  if (req.method !== "POST") return send(res, 405, { error: "use GET, or POST /nodes/{approve,deny,retry,clear,forget}" });
  if (!NODE_ACTIONS.includes(rest)) return send(res, 404, { error: `no node action ${JSON.stringify(rest)}: one of ${NODE_ACTIONS.join(", ")}` });
  if (!token) return send(res, 403, { error: "node actions disabled: no admin token configured" });
  if (!authorised(req, token)) return send(res, 401, { error: "bad or missing bearer token" });
  const action = actionOf(rest, await readJson(req), req.socket.remoteAddress ?? "unknown");
  const results = await nodes.act(action);
  return send(res, 200, { action: rest, results });
}
