export * from "./connection.js";
export * from "./errors.js";
export * from "./rpc-client.js";
export * from "./local-server.js";
export * from "./reply-watch.js";
export * from "./redact.js";
