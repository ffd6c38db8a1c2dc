#!/usr/bin/env node
// Makes sure Debian's nats-server (and, for the tests, golang-cfssl) are installed: the two
// README commands must work on a fresh machine. Installs with apt-get when running as root on
// Debian; otherwise says exactly what to install. Usage: ensure-system-deps.mjs [nats-server] [cfssl]
import { spawnSync } from "node:child_process";

const PACKAGES = { "nats-server": "nats-server", cfssl: "golang-cfssl" };

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

export function ensureSystemDeps(commands = ["nats-server"], log = (s) => process.stderr.write(s + "\n")) {
  const missing = commands.filter((c) => !has(c));
  if (missing.length === 0) return true;
  const pkgs = missing.map((c) => PACKAGES[c] ?? c);
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (!root || !has("apt-get")) {
    log(`missing ${missing.join(", ")}: install Debian's ${pkgs.join(" ")} (apt-get install ${pkgs.join(" ")})`);
    return false;
  }
  log(`installing ${pkgs.join(" ")} with apt-get (missing: ${missing.join(", ")})`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  const install = update.status === 0 ? spawnSync("apt-get", ["install", "-y", "-qq", ...pkgs], { stdio: "inherit", env }) : update;
  if (install.status !== 0) {
    log(`apt-get could not install ${pkgs.join(" ")}`);
    return false;
  }
  return missing.every(has);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2);
  process.exit(ensureSystemDeps(wanted.length ? wanted : ["nats-server"]) ? 0 : 1);
}
