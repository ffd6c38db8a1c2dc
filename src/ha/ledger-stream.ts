/**
 * An append-only JetStream stream that every instance reads from a sequence number on: the
 * certificate ledger's replication (ca/ledger-replica.ts) runs over it. A publish carries a
 * message id, so an event sent again within the stream's duplicate window is stored once, and
 * its ack means the stream (every replica it has) stored it. ha/ knows nothing of the events.
 */
import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, nanos, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import { jetStreamOptions, withDeadline } from "./kv.js";

export const LEDGER_STREAM = "CHORIA_PROVISIONER_LEDGER";
export const LEDGER_SUBJECT = "choria.provisioner.ledger";
/** how long a message id is remembered: a re-sent event within it is not stored twice */
const DUPLICATE_WINDOW_MS = 120_000;

export interface StreamLogOptions {
  nc: NatsConnection;
  stream?: string;
  subject?: string;
  /** replicas when the stream has to be created; an existing stream keeps its own */
  replicas?: number;
  apiPrefix?: string;
  /** bound on each publish and API call */
  timeoutMs?: number;
}

export class StreamLog {
  private consumer?: ConsumerMessages;
  private stopped = false;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    readonly subject: string,
    /** the stream's creation time: a stream deleted and made again numbers its messages from 1 again */
    readonly incarnation: string,
    private readonly opMs: number,
  ) {}

  /** opens the stream, creating it when missing (file storage, no age or size limit: the ledger keeps every certificate) */
  static async open(o: StreamLogOptions): Promise<StreamLog> {
    const stream = o.stream ?? LEDGER_STREAM;
    const subject = o.subject ?? LEDGER_SUBJECT;
    const opMs = o.timeoutMs ?? 5000;
    const jsOpts = jetStreamOptions(o.apiPrefix, opMs);
    const jsm = await o.nc.jetstreamManager(jsOpts);
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch (e) {
      if ((e as Error).message !== "stream not found") throw e;
      info = await jsm.streams.add({
        name: stream,
        subjects: [subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.New,
        num_replicas: o.replicas ?? 1,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      });
    }
    if (!info.config.subjects?.includes(subject)) throw new Error(`stream ${stream} exists but does not take ${subject} (its subjects: ${(info.config.subjects ?? []).join(", ") || "none"})`);
    return new StreamLog(o.nc.jetstream(jsOpts), jsm, stream, subject, `${stream}@${info.created}`, opMs);
  }

  /** resolves once the stream acknowledged the message (stored now, or a duplicate of one it holds) */
  async append(id: string, data: Uint8Array): Promise<void> {
    await withDeadline(this.js.publish(this.subject, data, { msgID: id, timeout: this.opMs }), this.opMs);
  }

  /** the sequence number of the stream's last message now (0 when empty) */
  async tail(): Promise<number> {
    const info = await withDeadline(this.jsm.streams.info(this.stream), this.opMs);
    return info.state.last_seq;
  }

  /**
   * Delivers every message from `fromSeq` on, in order, then new ones as they come. An ordered
   * consumer: the client re-creates it after a gap or a broker restart, from the last sequence it
   * delivered. Call once; stop with close().
   */
  async follow(fromSeq: number, onMessage: (seq: number, data: Uint8Array) => void): Promise<void> {
    if (this.consumer) throw new Error("follow() runs once per log");
    const c = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) });
    if (this.stopped) return;
    this.consumer = await c.consume({ max_messages: 1000, callback: (m) => onMessage(m.seq, m.data) });
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.consumer?.close();
  }
}
