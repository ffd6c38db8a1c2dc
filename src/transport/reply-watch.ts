/**
 * One node flow's view of the replies to its directed requests. A call resolves on the first
 * valid reply, but its request id stays routed here until the flow ends, so a second reply to
 * the same request (a cloned twin answers milliseconds later, an impostor answers too) is
 * still seen. The flow asks `conflict` before it signs and before it configures: nothing waits
 * for a second reply, so the happy path costs one map entry per request for the flow's life.
 */

/** why a reply was not taken: counted by reason, never by identity (cardinality) */
export type RejectReason = "undecodable" | "request_mismatch" | "wrong_sender" | "bad_body" | "not_pong";

export interface RejectedReply {
  /** the node the reply claims to be from: the node asked (directed) or the sender named */
  identity: string;
  /** agent#action of the request it answered, or "" when unknown */
  step: string;
  reason: RejectReason;
  detail: string;
}

/** second_reply: two valid replies to one request; invalid_and_valid: a valid reply and one that failed the checks */
export type ConflictKind = "second_reply" | "invalid_and_valid";

export interface ReplyConflict {
  step: string;
  kind: ConflictKind;
  detail: string;
}

/** at most this many rejected replies are kept per flow, for its record */
const MAX_REJECTS = 8;

export class ReplyWatch {
  /** the first conflict seen; later ones add nothing a record needs */
  conflict?: ReplyConflict;
  /** rejected replies to this flow's requests (the first few) and their count */
  readonly rejects: Array<Pick<RejectedReply, "step" | "reason">> = [];
  rejectCount = 0;
  /**
   * the node announced a start while its flow ran: a restarted process (its lock and keys are
   * gone) or a twin that just came up and has not answered yet; either way this flow's replies
   * may not be the server that would get the configuration
   */
  reannounced = false;
  private readonly ends: Array<() => void> = [];
  private closed = false;

  constructor(readonly identity: string) {}

  /** the client keeps a request routed here until close() */
  track(end: () => void): boolean {
    if (this.closed) return false;
    this.ends.push(end);
    return true;
  }

  rejected(r: Pick<RejectedReply, "step" | "reason">, answered: boolean): void {
    this.rejectCount++;
    if (this.rejects.length < MAX_REJECTS) this.rejects.push({ step: r.step, reason: r.reason });
    if (answered) this.conflicted({ step: r.step, kind: "invalid_and_valid", detail: `a reply that failed the checks (${r.reason}) besides a valid one` });
  }

  conflicted(c: ReplyConflict): void {
    this.conflict ??= c;
  }

  /** the flow is over: stop routing its requests' replies */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.ends) e();
    this.ends.length = 0;
  }
}
