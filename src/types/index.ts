export * from "./inventory.js";
export * from "./decision.js";
export * from "./recorded.js";
export * from "./child-env.js";
export * from "./decider.js";
export * from "./csr-checker.js";
export * from "./signing.js";
export * from "./dns-name.js";
