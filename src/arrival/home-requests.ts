/**
 * Directed RPC requests to nodes at their home brokers, over the arrival watches' connections:
 * what renewal sends `choria_provision#reprovision` with. A node outside provisioning mode runs
 * with protocol security on, so every request is signed with a client certificate the node
 * trusts; go-choria's file security checks that the callerid names that certificate
 * (`choria=<CN>`, valid for the CN) and verifies RSA signatures only.
 *
 * The ledger knows a node's certificate, not its home, so a request goes to every connected
 * configured home at once: the broker of the node's home delivers it, the others answer at once
 * that nobody is subscribed (no responders).
 */
import { X509Certificate, createPrivateKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RequestSigner, RpcReplyBody } from "../protocol/index.js";
import { RpcClient, RpcNoRespondersError, RpcTimeoutError, type RejectedReply } from "../transport/index.js";
import type { HomeConnection, HomeWatches } from "./watcher.js";

export interface CallerCredentials {
  /** choria=<the certificate's CN> */
  callerid: string;
  signer: RequestSigner;
}

/** Reads a client certificate and its key for signing requests; a clear error when they cannot sign for go-choria. */
export function callerFromFiles(certFile: string, keyFile: string): CallerCredentials {
  let pem: string;
  let cert: X509Certificate;
  try {
    pem = readFileSync(certFile, "utf8");
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new Error(`cannot read the client certificate ${certFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch (e) {
    throw new Error(`cannot read the client key ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (key.asymmetricKeyType !== "rsa") throw new Error(`the client key ${keyFile} is ${key.asymmetricKeyType}: go-choria's file security verifies only RSA request signatures`);
  if (!cert.checkPrivateKey(key)) throw new Error(`the client key ${keyFile} does not belong to the certificate ${certFile}`);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  if (!cn) throw new Error(`the client certificate ${certFile} has no CN: go-choria takes the caller's name from it`);
  // the leaf alone: a chain in pubcert is not what go-choria's file security reads
  const leaf = cert.toString();
  return { callerid: `choria=${cn}`, signer: { pubcert: leaf, sign: (msg) => sign("sha256", Buffer.from(msg, "utf8"), key).toString("base64") } };
}

export type HomeCallResult =
  | { ok: true; home: string; reply: RpcReplyBody }
  | { ok: false; failure: "unreachable" | "timeout" | "error"; message: string };

export interface HomeRequestOptions {
  /** our identity: the requests' senderid */
  identity: string;
  /** the collective the nodes serve at home */
  collective: string;
  timeoutMs: number;
  /** the caller and signer of each configured home */
  callers: Map<string, CallerCredentials>;
  onRejectedReply?: (r: RejectedReply) => void;
}

export class HomeRequests {
  private readonly clients = new Map<string, { nc: HomeConnection; rpc: RpcClient }>();

  constructor(
    private readonly watches: Pick<HomeWatches, "configured" | "connection">,
    private readonly o: HomeRequestOptions,
  ) {}

  private client(home: string): RpcClient | undefined {
    const nc = this.watches.connection(home);
    const caller = this.o.callers.get(home);
    if (!nc || !caller) return undefined;
    const have = this.clients.get(home);
    if (have?.nc === nc) return have.rpc;
    void have?.rpc.close();
    const rpc = new RpcClient({ nc, identity: this.o.identity, callerid: caller.callerid, collective: this.o.collective, signer: caller.signer, onRejectedReply: this.o.onRejectedReply });
    rpc.start();
    this.clients.set(home, { nc, rpc });
    return rpc;
  }

  /** some home is connected: asking now can reach a node */
  connected(): boolean {
    return this.watches.configured().some((h) => this.watches.connection(h) !== undefined);
  }

  /** The node's reply from whichever home it is at; unreachable when no home has it. */
  async call(identity: string, agent: string, action: string, data: Record<string, unknown>): Promise<HomeCallResult> {
    const homes = this.watches.configured().flatMap((h) => {
      const rpc = this.client(h);
      return rpc ? [{ h, rpc }] : [];
    });
    if (!homes.length) return { ok: false, failure: "unreachable", message: `no home broker connected (${this.watches.configured().join(", ") || "none configured"})` };
    try {
      return await Promise.any(homes.map(async ({ h, rpc }) => ({ ok: true as const, home: h, reply: await rpc.call(identity, agent, action, data, { timeoutMs: this.o.timeoutMs }) })));
    } catch (e) {
      const errors = (e as AggregateError).errors as Error[];
      if (errors.every((x) => x instanceof RpcNoRespondersError)) return { ok: false, failure: "unreachable", message: `not connected to any home broker (no responders at ${homes.map((x) => x.h).join(", ")})` };
      if (errors.some((x) => x instanceof RpcTimeoutError)) return { ok: false, failure: "timeout", message: `no reply within ${this.o.timeoutMs} ms` };
      return { ok: false, failure: "error", message: errors.map((x) => x.message).join("; ") };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.rpc.close()));
    this.clients.clear();
  }
}
