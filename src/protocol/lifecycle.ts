/**
 * Lifecycle events (§5): plain JSON on choria.lifecycle.event.<type>.<component>, in the
 * Choria format or wrapped as a CloudEvent (what servers send by default). Readers accept both.
 */
import { ProtocolError } from "./errors.js";
import { newEventId, unixSeconds } from "./ids.js";

export type LifecycleType = "startup" | "shutdown" | "provisioned" | "alive" | "upgraded" | "governor";

export interface LifecycleEvent {
  protocol: string;
  id: string;
  identity: string;
  component: string;
  timestamp: number;
  version?: string;
  new_version?: string;
}

export interface DecodedLifecycle {
  type: string;
  format: "choria" | "cloudevent";
  event: LifecycleEvent;
}

export function newLifecycleEvent(type: LifecycleType, identity: string, component: string, extra: { version?: string; new_version?: string } = {}, now = Date.now()): LifecycleEvent {
  const e: LifecycleEvent = { protocol: `io.choria.lifecycle.v1.${type}`, id: newEventId(), identity, component, timestamp: unixSeconds(now) };
  if ((type === "startup" || type === "alive" || type === "upgraded") && extra.version !== undefined) e.version = extra.version;
  if (type === "upgraded" && extra.new_version !== undefined) e.new_version = extra.new_version;
  return e;
}

export function encodeLifecycle(e: LifecycleEvent, format: "choria" | "cloudevent" = "cloudevent"): string {
  if (format === "choria") return JSON.stringify(e);
  const time = new Date(e.timestamp * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  return JSON.stringify({
    specversion: "1.0",
    id: e.id,
    source: "io.choria.lifecycle",
    type: e.protocol,
    subject: e.identity,
    datacontenttype: "application/json",
    time,
    data: e,
  });
}

function typeOf(protocol: string): string | undefined {
  let m = /^io\.choria\.lifecycle\.v1\.([a-z_]+)$/.exec(protocol);
  if (m) return m[1];
  m = /^choria:lifecycle:([a-z_]+):1$/.exec(protocol);
  return m ? m[1] : undefined;
}

function checkEvent(d: Record<string, unknown>): LifecycleEvent {
  const layer = "lifecycle";
  if (typeof d.protocol !== "string") throw new ProtocolError("schema", layer, "protocol must be a string");
  if (typeof d.identity !== "string" || d.identity === "") throw new ProtocolError("schema", layer, "identity must be a non-empty string");
  if (typeof d.component !== "string") throw new ProtocolError("schema", layer, "component must be a string");
  return d as unknown as LifecycleEvent;
}

export function decodeLifecycle(bytes: Uint8Array | string, maxBytes = 64 * 1024): DecodedLifecycle {
  const layer = "lifecycle";
  const len = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (len > maxBytes) throw new ProtocolError("oversize", layer, `event of ${len} bytes exceeds ${maxBytes}`);
  let j: unknown;
  try {
    j = JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch (e) {
    throw new ProtocolError("not_json", layer, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new ProtocolError("schema", layer, "must be a JSON object");
  const o = j as Record<string, unknown>;
  if (typeof o.protocol === "string" && o.protocol.startsWith("io.choria.lifecycle") || typeof o.protocol === "string" && o.protocol.startsWith("choria:lifecycle:")) {
    const event = checkEvent(o);
    const type = typeOf(event.protocol);
    if (!type) throw new ProtocolError("unknown_protocol", layer, `unknown lifecycle protocol ${event.protocol}`);
    return { type, format: "choria", event };
  }
  if (o.specversion === "1.0" && o.source === "io.choria.lifecycle") {
    if (typeof o.data !== "object" || o.data === null) throw new ProtocolError("schema", layer, "cloudevent data must be an object");
    const event = checkEvent(o.data as Record<string, unknown>);
    const type = typeOf(event.protocol) ?? (typeof o.type === "string" ? typeOf(o.type) : undefined);
    if (!type) throw new ProtocolError("unknown_protocol", layer, `unknown lifecycle type ${String(o.type)}`);
    return { type, format: "cloudevent", event };
  }
  throw new ProtocolError("unknown_protocol", layer, "neither a Choria lifecycle event nor a lifecycle CloudEvent");
}
