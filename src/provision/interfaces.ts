/**
 * What the orchestrator needs of the RPC client, as an interface, so the per-node flow is
 * testable with the real parts wired in by daemon/. The contracts with policy and CA (Decider,
 * CsrChecker, Signer) are defined once, in types/.
 */
import type { RpcReplyBody } from "../protocol/index.js";
import type { ReplyWatch } from "../transport/index.js";

export interface RpcCaller {
  call<T = Record<string, unknown>>(identity: string, agent: string, action: string, data?: Record<string, unknown>, o?: { timeoutMs?: number; signal?: AbortSignal; watch?: ReplyWatch }): Promise<RpcReplyBody<T>>;
}
