import type { Filter } from "./filter.js";
import type { SeenBy } from "./v1-types.js";

/**
 * Choria protocol v2 documents (§3). Field order in the interfaces is Go's order on the wire.
 * Every Go []byte field (data, request, message, reply, signature) is standard base64 in JSON.
 */
export const TRANSPORT_V2 = "io.choria.protocol.v2.transport";
export const SECURE_REQUEST_V2 = "io.choria.protocol.v2.secure_request";
export const REQUEST_V2 = "io.choria.protocol.v2.request";
export const SECURE_REPLY_V2 = "io.choria.protocol.v2.secure_reply";
/**
 * What Go writes in a reply. The official reply.json schema's protocol const says
 * "io.choria.protocol.v2.request" (a copy/paste slip upstream); Go only validates replies in
 * strict client mode, so the bug never bites there. We follow Go.
 */
export const REPLY_V2 = "io.choria.protocol.v2.reply";

export interface FederationHeadersV2 {
  request?: string;
  reply?: string;
  targets?: string[];
}

/** Go's TransportHeaders: reply-to is `reply`, mc_sender is `sender`, seen-by is `trace`. */
export interface TransportHeadersV2 {
  reply?: string;
  sender?: string;
  trace?: SeenBy[];
  federation?: FederationHeadersV2;
}

export interface TransportV2 {
  protocol: typeof TRANSPORT_V2;
  /** base64 of the secure request / secure reply JSON */
  data: string;
  headers: TransportHeadersV2;
}

export interface SecureRequestV2 {
  protocol: typeof SECURE_REQUEST_V2;
  /** base64 of the request JSON: the exact bytes the signature covers */
  request: string;
  /** base64 of the raw ed25519 signature, or of "insecure" */
  signature: string;
  /** the caller's JWT; the schema requires it non-empty */
  caller: string;
  signer?: string;
}

export interface RequestV2 {
  protocol: typeof REQUEST_V2;
  /** base64 of the payload bytes */
  message: string;
  /** KSUID when we make it; any non-empty string is accepted */
  id: string;
  sender: string;
  caller: string;
  collective: string;
  agent: string;
  ttl: number;
  /** Unix nanoseconds */
  time: number;
  filter?: Filter;
}

export interface SecureReplyV2 {
  protocol: typeof SECURE_REPLY_V2;
  /** base64 of the reply JSON */
  reply: string;
  /** base64(sha256(reply JSON bytes)) */
  hash: string;
  signature?: string;
  /** JWT of the replying server, with signature, when it signs replies */
  sender?: string;
}

export interface ReplyV2 {
  protocol: typeof REPLY_V2;
  /** base64 of the payload bytes */
  message: string;
  request: string;
  sender: string;
  agent: string;
  /** Unix nanoseconds */
  time: number;
}
