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
