export * from "./inventory.js";
export * from "./decision.js";
