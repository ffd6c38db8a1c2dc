/**
 * Every way a wire message can be bad has a code, so callers can count it in a metric
 * label and log a reason; nothing in the codec throws anything else for bad input.
 */
export type ProtocolErrorCode =
  | "oversize"
  | "not_json"
  | "unknown_protocol"
  | "bad_base64"
  | "schema"
  | "hash_mismatch"
  | "bad_payload";

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** which layer was bad: transport, secure_request, request, secure_reply, reply, rpc, lifecycle, registration */
  readonly layer: string;
  constructor(code: ProtocolErrorCode, layer: string, message: string) {
    super(`${layer}: ${message}`);
    this.name = "ProtocolError";
    this.code = code;
    this.layer = layer;
  }
}
