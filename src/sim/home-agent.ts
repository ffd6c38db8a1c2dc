/**
 * What a simulated node answers at home, once provisioned: directed requests on
 * `<collective>.node.<identity>` of its home broker, with protocol security on. Only
 * `choria_provision#reprovision` is modelled (what certificate renewal sends); it sends the node
 * back to provisioning mode, where the provisioner finds it again.
 *
 * Protocol security as a provisioned go-choria server applies it, short of the CA: a request
 * must be signed (RSA, SHA-256) by the certificate it carries, and its callerid must name that
 * certificate (`choria=<CN>`); otherwise it is dropped without a reply, and counted.
 */
import { X509Certificate, verify } from "node:crypto";
import { PROVISION_ACTION, PROVISION_AGENT, agentFilter, decodeRequest, encodeReply, encodeRpcReply, filterMatches, withinTtl } from "../protocol/index.js";
import { reprovisionAtHome } from "./agents/choria-provision.js";
import { parseRpcBody } from "./dispatcher.js";
import { Mode, type SimNode } from "./node.js";
import { LOADED_AGENTS, type ActionResult, type SimRuntime } from "./runtime.js";

export interface HomeAgentDeps {
  rt: SimRuntime;
  byIdentity: Map<string, SimNode>;
  /** after the splay: the node restarts in provisioning mode */
  goBack(node: SimNode, delayMs: number): void;
}

/** go-choria's default collective, when the configuration names none */
const DEFAULT_COLLECTIVES = "mcollective";

function collectivesOf(node: SimNode): string[] {
  return (node.configuration?.collectives ?? DEFAULT_COLLECTIVES).split(",").map((c) => c.trim()).filter(Boolean);
}

/** the caller's name in its certificate, or why the request is not acceptable */
function signatureProblem(message: string, signature: string, pubcert: string, callerid: string): string | undefined {
  if (signature === "insecure" || pubcert === "insecure" || !pubcert) return "request not signed";
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pubcert);
  } catch (e) {
    return `pubcert is not a certificate: ${(e as Error).message}`;
  }
  if (cert.publicKey.asymmetricKeyType !== "rsa") return `pubcert holds a ${cert.publicKey.asymmetricKeyType} key: go-choria verifies RSA signatures only`;
  if (!verify("sha256", Buffer.from(message, "utf8"), cert.publicKey, Buffer.from(signature, "base64"))) return "signature does not verify with pubcert";
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  if (callerid !== `choria=${cn}`) return `callerid ${callerid} does not name the certificate's CN ${cn}`;
  return undefined;
}

/**
 * A message on a home broker's `<collective>.node.<identity>`, from the link at `homeUrl`.
 * Returns false when no node of this fleet is subscribed there (the caller answers as the broker
 * would: no responders).
 */
export function homeRequest(d: HomeAgentDeps, homeUrl: string, subject: string, data: Uint8Array, publish: (subject: string, bytes: Uint8Array) => void): boolean {
  const [collective, kind, ...rest] = subject.split(".");
  const node = d.byIdentity.get(rest.join("."));
  if (kind !== "node" || !node || node.mode !== Mode.Server || node.home !== homeUrl || !collectivesOf(node).includes(collective!)) return false;
  const { rt } = d;
  let req: ReturnType<typeof decodeRequest>;
  try {
    req = decodeRequest(data);
  } catch (e) {
    rt.stats.violation(node, "home_bad_request", (e as Error).message);
    return true;
  }
  const sig = signatureProblem(req.secure.message, req.secure.signature, req.secure.pubcert, req.request.envelope.callerid);
  if (sig) {
    rt.stats.violation(node, "home_security", sig);
    return true;
  }
  const env = req.request.envelope;
  if (!withinTtl(env)) {
    rt.stats.violation(node, "ttl_window", `time ${env.time} with ttl ${env.ttl} is outside the window`);
    return true;
  }
  if (!filterMatches(env.filter ?? agentFilter(env.agent), { identity: node.identity, agents: LOADED_AGENTS, classes: [], facts: rt.factsOf(node) })) return true;
  const body = parseRpcBody(req.payload);
  const action = typeof body === "string" ? "" : body.action;
  rt.stats.request(env.agent, action, node);
  if (env.agent !== PROVISION_AGENT || typeof body === "string" || action !== PROVISION_ACTION.reprovision) {
    rt.stats.violation(node, "home_not_modelled", `${env.agent}#${action} at home: only choria_provision#reprovision is simulated there`);
    return true;
  }
  const result: ActionResult = reprovisionAtHome(rt, node, body.data, body.agent, d.goBack);
  if (req.replyTo) {
    const payload = encodeRpcReply({ action, statuscode: result.statuscode, statusmsg: result.statusmsg, data: result.data });
    publish(req.replyTo, encodeReply({ requestId: env.requestid, agent: env.agent, senderid: node.identity, payload, connectedServer: homeUrl }));
    rt.stats.totals.replies++;
    rt.stats.replied(node, env.agent, action);
  }
  result.after?.();
  return true;
}
