/**
 * Admin HTTP endpoint, loopback by default: /metrics (Prometheus), /healthz (the process
 * answers), /readyz (connected, policy loaded, active), /status (JSON), and POST /pause and
 * /resume guarded by a bearer token. Without a configured token pause/resume are refused:
 * an unguarded switch that stops provisioning is not a safe default.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { Registry } from "prom-client";

export interface AdminTarget {
  status(): { ready: boolean } & Record<string, unknown>;
  pause(): void;
  resume(): void;
}

export interface AdminOptions {
  listen: string;
  token?: string;
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

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  if (i < 0) throw new Error(`admin listen ${JSON.stringify(listen)} must be host:port`);
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`admin listen ${JSON.stringify(listen)} has a bad port`);
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

export async function startAdminServer(o: AdminOptions): Promise<AdminServer> {
  const { host, port } = parseListen(o.listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    void (async () => {
      try {
        if (req.method === "GET" && path === "/metrics") return send(res, 200, await o.registry.metrics(), o.registry.contentType);
        if (req.method === "GET" && path === "/healthz") return send(res, 200, { ok: true });
        if (req.method === "GET" && path === "/readyz") {
          const s = o.target.status();
          return send(res, s.ready ? 200 : 503, { ready: s.ready });
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
        send(res, 404, { error: `no such endpoint ${path}` });
      } catch (e) {
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
