import type { Filter } from "./filter.js";

/** Choria protocol v1 documents (§2). Field order in the interfaces is Go's order on the wire. */
export const TRANSPORT_V1 = "choria:transport:1";
export const SECURE_REQUEST_V1 = "choria:secure:request:1";
export const REQUEST_V1 = "choria:request:1";
export const SECURE_REPLY_V1 = "choria:secure:reply:1";
export const REPLY_V1 = "choria:reply:1";

export type SeenBy = [string, string, string];

export interface FederationHeaders {
  req?: string;
  "reply-to"?: string;
  target?: string[];
}

export interface TransportHeadersV1 {
  "reply-to"?: string;
  mc_sender?: string;
  "seen-by"?: SeenBy[];
  federation?: FederationHeaders;
}

export interface TransportV1 {
  protocol: typeof TRANSPORT_V1;
  data: string;
  headers: TransportHeadersV1;
}

export interface SecureRequestV1 {
  protocol: typeof SECURE_REQUEST_V1;
  message: string;
  signature: string;
  pubcert: string;
}

export interface RequestEnvelopeV1 {
  requestid: string;
  senderid: string;
  callerid: string;
  collective: string;
  agent: string;
  ttl: number;
  time: number;
  filter: Filter;
}

export interface RequestV1 {
  protocol: typeof REQUEST_V1;
  message: string;
  envelope: RequestEnvelopeV1;
}

export interface SecureReplyV1 {
  protocol: typeof SECURE_REPLY_V1;
  message: string;
  hash: string;
}

export interface ReplyEnvelopeV1 {
  requestid: string;
  senderid: string;
  agent: string;
  time: number;
}

export interface ReplyV1 {
  protocol: typeof REPLY_V1;
  message: string;
  envelope: ReplyEnvelopeV1;
}
