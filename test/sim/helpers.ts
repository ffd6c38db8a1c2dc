import "reflect-metadata";
/**
 * Test-side provisioner pieces for driving the simulator: a throwaway CA that signs the
 * CSRs nodes return, and raw request builders for what a well-behaved client never sends.
 */
import { webcrypto, createPublicKey, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { RSA, type TestCa } from "../helpers/ca.js";

import type { NatsConnection } from "nats";
import { DISCOVERY_PING_PAYLOAD, agentFilter, encodeRequest, encodeRpcRequest, nodeSubject, replySubject, decodeReply, decodeRpcReply, type Filter, type RpcReplyBody } from "../../src/protocol/index.js";

let serial = 100;

/** Signs for `publicKey` (default: the CSR's) with `cn` and a DNS SAN of the same name. */
export async function signCsr(ca: TestCa, csrPem: string, o: { cn?: string; publicKey?: x509.PublicKey | webcrypto.CryptoKey; notAfter?: Date } = {}): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const cn = o.cn ?? /CN=([^,]+)/.exec(csr.subject)?.[1] ?? "unknown";
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(4, "0"),
    subject: `CN=${cn}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: o.notAfter ?? new Date(Date.now() + 86_400_000),
    signingAlgorithm: RSA,
    publicKey: o.publicKey ?? csr.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: cn }])],
  });
  return cert.toString("pem");
}

export function csrInfo(csrPem: string): { subject: string; verify: () => Promise<boolean>; spki: Buffer; algorithm: string } {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  return { subject: csr.subject, verify: () => csr.verify(), spki: Buffer.from(csr.publicKey.rawData), algorithm: (csr.signatureAlgorithm as { hash?: { name: string } }).hash?.name ?? "" };
}

export function keyObjectOfPkcs1Pem(pemText: string): KeyObject {
  const der = Buffer.from(pemText.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  return createPublicKey({ key: der, format: "der", type: "pkcs1" });
}

/** `home`: the broker URL(s) the node is configured with, where it goes once restarted */
export function configData(identity: string, o: { certificate?: string; ca?: string; token?: string; config?: Record<string, string> | string; home?: string } = {}): Record<string, unknown> {
  const config = o.config ?? { identity, "plugin.choria.server.provision": "false", "plugin.choria.srv_domain": "example.net", ...(o.home ? { "plugin.choria.middleware_hosts": o.home } : {}) };
  // the ten keys the Go provisioner always sends, sorted
  return {
    action_policies: {},
    ca: o.ca ?? "",
    certificate: o.certificate ?? "",
    config: typeof config === "string" ? config : JSON.stringify(config),
    ecdh_public: "",
    key: "",
    opa_policies: {},
    server_jwt: "",
    ssldir: "/etc/choria/ssl",
    token: o.token ?? "",
  };
}

export const CALLER = "choria=provisioner.example.net";
export const SENDER = "provisioner.example.net";

export interface RawRequest {
  agent?: string;
  action?: string;
  data?: Record<string, unknown>;
  /** raw request payload instead of an RPC body */
  payload?: string;
  ttl?: number;
  time?: number;
  collective?: string;
  requestId?: string;
  filter?: Filter;
  callerid?: string;
  senderid?: string;
  replyTo?: string;
  /** leave the reply-to header out entirely */
  noReplyTo?: boolean;
}

/** Hand-built request bytes, bypassing the client's own sanity checks. */
export function rawRequest(r: RawRequest): { bytes: Uint8Array; requestId: string; replyTo: string } {
  const agent = r.agent ?? "choria_provision";
  const requestId = r.requestId ?? webcrypto.randomUUID().replace(/-/g, "");
  const callerid = r.callerid ?? CALLER;
  const replyTo = r.replyTo ?? replySubject(callerid, requestId);
  // encodeRequest refuses ttl < 30, so build with a valid one and patch the JSON
  const enc = encodeRequest({
    agent,
    payload: r.payload ?? (agent === "discovery" ? DISCOVERY_PING_PAYLOAD : encodeRpcRequest(agent, r.action ?? "jwt", r.data ?? {})),
    callerid,
    senderid: r.senderid ?? SENDER,
    collective: r.collective,
    time: r.time,
    filter: r.filter ?? agentFilter(agent),
    requestId: r.requestId && r.requestId.length !== 32 ? "x".repeat(32) : requestId,
    replyTo,
  });
  let bytes = enc.bytes;
  if (r.ttl !== undefined || (r.requestId && r.requestId.length !== 32) || r.noReplyTo) {
    const t = JSON.parse(Buffer.from(enc.bytes).toString()) as { data: string; headers: Record<string, unknown> };
    if (r.noReplyTo) delete t.headers["reply-to"];
    const sec = JSON.parse(Buffer.from(t.data, "base64").toString()) as { message: string };
    const req = JSON.parse(sec.message) as { envelope: { ttl: number; requestid: string } };
    if (r.ttl !== undefined) req.envelope.ttl = r.ttl;
    if (r.requestId) req.envelope.requestid = r.requestId;
    sec.message = JSON.stringify(req);
    t.data = Buffer.from(JSON.stringify(sec)).toString("base64");
    bytes = Buffer.from(JSON.stringify(t));
  }
  return { bytes, requestId, replyTo };
}

/**
 * Publishes raw bytes to a node (or any subject) and collects whatever arrives on the reply
 * subject within waitMs: the bounded wait that proves absence.
 */
export async function publishAndCollect(nc: NatsConnection, subject: string, req: { bytes: Uint8Array; replyTo: string }, waitMs: number): Promise<RpcReplyBody[]> {
  const got: RpcReplyBody[] = [];
  const sub = nc.subscribe(req.replyTo, {
    callback: (_e, m) => {
      const d = decodeReply(m.data);
      got.push(d.reply.message === "pong" ? { action: "", statuscode: 0, statusmsg: "pong", data: {} } : decodeRpcReply(d.reply.message));
    },
  });
  await nc.flush();
  nc.publish(subject, req.bytes);
  await new Promise((r) => setTimeout(r, waitMs));
  sub.unsubscribe();
  return got;
}

export { nodeSubject };

import { decodeLifecycle, type DecodedLifecycle } from "../../src/protocol/index.js";
import { EventEmitter, once } from "node:events";

export interface SeenEvent extends DecodedLifecycle {
  subject: string;
  raw: Record<string, unknown>;
}

/** Collects lifecycle events; `next` waits for a matching one (already seen or future), no polling. */
export class LifecycleLog {
  readonly seen: SeenEvent[] = [];
  private readonly em = new EventEmitter();
  constructor(nc: NatsConnection) {
    this.em.setMaxListeners(0);
    nc.subscribe("choria.lifecycle.event.>", {
      callback: (_e, m) => {
        const d = decodeLifecycle(m.data);
        const ev: SeenEvent = { ...d, subject: m.subject, raw: JSON.parse(Buffer.from(m.data).toString()) as Record<string, unknown> };
        this.seen.push(ev);
        this.em.emit("event", ev);
      },
    });
  }

  count(pred: (e: SeenEvent) => boolean): number {
    return this.seen.filter(pred).length;
  }

  /** resolves when `n` events matching pred have been seen in total */
  async next(pred: (e: SeenEvent) => boolean, timeoutMs = 5000, n = 1): Promise<SeenEvent> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      for (;;) {
        const hits = this.seen.filter(pred);
        if (hits.length >= n) return hits[n - 1];
        await once(this.em, "event", { signal: ac.signal });
      }
    } catch (e) {
      if (ac.signal.aborted) throw new Error(`no lifecycle event matched within ${timeoutMs}ms; seen: ${this.seen.map((s) => s.subject + ":" + s.event.identity).join(", ")}`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

export const ev = (type: string, identity: string, component = "provision_mode_server") => (e: SeenEvent) => e.type === type && e.event.identity === identity && e.event.component === component;
