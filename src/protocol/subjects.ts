import { md5hex } from "./ids.js";

/** The collective is hard-coded in provisioning mode (§1.1). */
export const PROVISIONING_COLLECTIVE = "provisioning";
export const REGISTRATION_SUBJECT = "provisioning.registration.data";
/** the 2018 design's registration subject, still honoured for old fleets */
export const LEGACY_REGISTRATION_SUBJECT = "choria.provisioning_data";

export function nodeSubject(identity: string, collective = PROVISIONING_COLLECTIVE): string {
  return `${collective}.node.${identity}`;
}

export function broadcastSubject(agent: string, collective = PROVISIONING_COLLECTIVE): string {
  return `${collective}.broadcast.agent.${agent}`;
}

// A client has one callerid, and every request it sends needs its md5 (4 times a provisioned
// node; bench/README.md, "Figures behind the code"): remember the last one rather than hash it again.
let lastCaller = "";
let lastCallerMd5 = "";

/** prefix under which every reply for this caller arrives; subscribe to `${prefix}.>` once */
export function replyPrefix(callerid: string, collective = PROVISIONING_COLLECTIVE): string {
  if (callerid !== lastCaller || lastCallerMd5 === "") {
    lastCallerMd5 = md5hex(callerid);
    lastCaller = callerid;
  }
  return `${collective}.reply.${lastCallerMd5}`;
}

export function replySubject(callerid: string, requestId: string, collective = PROVISIONING_COLLECTIVE): string {
  return `${replyPrefix(callerid, collective)}.${requestId}`;
}

export function lifecycleSubject(type: string, component: string): string {
  return `choria.lifecycle.event.${type}.${component}`;
}

/** NATS subject tokens may not hold spaces, wildcards or empty parts; identities become tokens of directed subjects. */
export function isValidIdentity(identity: string): boolean {
  return identity.length > 0 && identity.length <= 255 && !/[\s*>]/.test(identity) && !identity.startsWith(".") && !identity.endsWith(".") && !identity.includes("..");
}
