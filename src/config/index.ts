export * from "./duration.js";
export * from "./types.js";
export * from "./load.js";
export * from "./schema.js";
