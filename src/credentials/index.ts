export * from "./errors.js";
export * from "./ksuid.js";
export * from "./keys.js";
export * from "./jws.js";
export * from "./provisioning-jwt.js";
export * from "./key-transport.js";
export * from "./ed25519.js";
