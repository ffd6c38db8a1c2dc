/**
 * Decision audit: every DecisionRecord as one JSON line in a file (append-only, buffered by
 * the stream) and optionally published on a NATS subject. A failure to write is counted and
 * logged but never stops provisioning. The line for a configure request is the exception to
 * the buffering: the flow waits until the file has it before the request goes out.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { ArrivalRecord, ConfiguringRecord, DecisionRecord, RenewRecord } from "../types/index.js";
import type { OperatorAuditEntry } from "./operator.js";
import { redactConfiguration } from "./redact.js";

export interface AuditSink {
  write(r: DecisionRecord): void;
  /** an operator's action (operator.ts' OperatorAuditEntry): one JSON line like a record */
  action(a: OperatorAuditEntry): void;
  /** an arrival verdict (arrival/): the follow-up to a configure record, same node and decision */
  arrival(r: ArrivalRecord): void;
  /**
   * a configure request about to be sent: resolves once the line is in the file (handed to the
   * kernel, so a killed daemon leaves it; not fsynced, so a power loss may not), at once without
   * a file; never rejects, a failed write goes to onError
   */
  configuring(r: ConfiguringRecord): Promise<void>;
  /** a certificate renewal step (arrival/renewal.ts) */
  renew(r: RenewRecord): void;
  close(): Promise<void>;
}

export interface AuditOptions {
  file?: string;
  /** publishes each record here when set */
  publish?: (subject: string, data: string) => void;
  subject?: string;
  onError?: (e: Error) => void;
}

export function redactRecord(r: DecisionRecord): DecisionRecord {
  return r.configuration ? { ...r, configuration: redactConfiguration(r.configuration) } : r;
}

export function createAuditSink(o: AuditOptions): AuditSink {
  let stream: WriteStream | undefined;
  if (o.file) {
    mkdirSync(dirname(o.file), { recursive: true });
    stream = createWriteStream(o.file, { flags: "a" });
    stream.on("error", (e) => o.onError?.(e));
  }
  const emit = (line: string, written?: (e?: Error | null) => void) => {
    if (stream) stream.write(line + "\n", written);
    if (o.publish && o.subject) {
      try {
        o.publish(o.subject, line);
      } catch (e) {
        o.onError?.(e as Error);
      }
    }
  };
  const done = Promise.resolve();
  return {
    write: (r) => emit(JSON.stringify(redactRecord(r))),
    action: (a) => emit(JSON.stringify(a)),
    arrival: (r) => emit(JSON.stringify(r)),
    configuring(r) {
      if (!stream) {
        emit(JSON.stringify(r));
        return done;
      }
      // the stream's own error event reports a failed write; the flow goes on either way
      return new Promise((resolve) => emit(JSON.stringify(r), () => resolve()));
    },
    renew: (r) => emit(JSON.stringify(r)),
    close() {
      return new Promise((resolve) => (stream ? stream.end(resolve) : resolve()));
    },
  };
}
