export * from "./loop.js";
export * from "./tracker.js";
export * from "./rollout.js";
export * from "./health.js";
export * from "./gate.js";
export * from "./watcher.js";
