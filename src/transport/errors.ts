/** Why an RPC did not produce a usable reply; the daemon maps each to a retry policy and a metric label. */
export class RpcTimeoutError extends Error {
  readonly identity: string;
  readonly agent: string;
  readonly action: string;
  constructor(identity: string, agent: string, action: string, timeoutMs: number) {
    super(`${agent}#${action} to ${identity} timed out after ${timeoutMs}ms`);
    this.name = "RpcTimeoutError";
    this.identity = identity;
    this.agent = agent;
    this.action = action;
  }
}

export class RpcCancelledError extends Error {
  constructor(what: string) {
    super(`${what} was cancelled`);
    this.name = "RpcCancelledError";
  }
}

export class RpcClosedError extends Error {
  constructor() {
    super("RPC client is closed");
    this.name = "RpcClosedError";
  }
}

/**
 * The broker said nobody is subscribed on the node's subject (a NATS 503 no-responders status):
 * the node does not exist or has left provisioning mode. Known in one round trip, not a timeout.
 */
export class RpcNoRespondersError extends Error {
  readonly identity: string;
  constructor(identity: string, agent: string, action: string) {
    // no stack: a flood of announcements for absent servers makes thousands of these, and
    // capturing their stacks was a tenth of the daemon's time for each
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${agent}#${action} to ${identity}: no responders (nothing is subscribed on the node's subject)`);
    Error.stackTraceLimit = limit;
    this.name = "RpcNoRespondersError";
    this.identity = identity;
  }
}

/** The broker connection was lost while the call waited: its reply, if any, went with it. */
export class RpcConnectionLostError extends Error {
  constructor(what: string) {
    super(`${what}: the broker connection was lost while waiting for the reply`);
    this.name = "RpcConnectionLostError";
  }
}
