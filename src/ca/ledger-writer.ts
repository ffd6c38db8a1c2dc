/**
 * The ledger's writer thread: commits the rows the main thread sends, one transaction a message,
 * and answers when the commit (its fsync included) is done. The schema is the main thread's
 * business: it opened the file first.
 */
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import { INSERT_CERTIFICATE, ledgerPragmas } from "./ledger.js";
import type { ToLedgerWriter, FromLedgerWriter } from "./ledger-writer-client.js";

const db = new Database((workerData as { path: string }).path);
ledgerPragmas(db);
const insert = db.prepare(INSERT_CERTIFICATE);
const insertMany = db.transaction((rows: Array<Record<string, unknown>>) => {
  for (const r of rows) insert.run(r);
});

parentPort!.on("message", (m: ToLedgerWriter) => {
  let reply: FromLedgerWriter;
  try {
    insertMany(m.rows);
    reply = { id: m.id };
  } catch (e) {
    reply = { id: m.id, error: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});
