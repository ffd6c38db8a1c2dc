export * from "./duration.js";
export * from "./types.js";
export * from "./load.js";
