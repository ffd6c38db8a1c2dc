/**
 * A lab of real go-choria processes for the real-Choria suite (test/real/):
 *
 * - the `choria` binary built from interop/choria by scripts/build-real-choria.mjs (run-tests
 *   passes its path in CHORIA_REAL_BIN, or the reason it could not in CHORIA_REAL_SKIP);
 * - a CA of ours (the built-in CA) that signs the brokers' and the test client's certificates;
 * - a provisioning broker: nats-server offering TLS without requiring it, as provisioning-mode
 *   servers always dial with TLS and send their JWT as the connection token;
 * - a home broker: nats-server requiring verified mutual TLS with certificates from our CA;
 * - servers in provisioning mode, each in its own directory with its own identity, started by
 *   absolute path (choria_provision#restart re-executes os.Args) and stopped by PID.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, sign, webcrypto } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type { NatsConnection, Subscription } from "nats";
import { importIntermediate, initBuiltinCa } from "../../src/ca/index.js";
import type { ConfigFile } from "../../src/config/index.js";
import { DISCOVERY_PING_PAYLOAD, agentFilter, broadcastSubject, decodeReply, encodeRequest } from "../../src/protocol/index.js";
import { connectNats, closeNats, freePort, startNatsServer, type LocalNatsServer } from "../../src/transport/index.js";
import { startTestDaemon, type TestDaemon } from "./daemon.js";
import { Waiters } from "./waiters.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** why the real-Choria suite cannot run here, or undefined when it can */
export const REAL_SKIP: string | undefined = process.env.CHORIA_REAL_BIN ? undefined : (process.env.CHORIA_REAL_SKIP ?? "CHORIA_REAL_BIN is not set (run the suite through `npm test`, which builds the real go-choria)");
export const CHORIA_BIN = process.env.CHORIA_REAL_BIN ?? "";

export const TOKEN = "s3cret-provisioning-token";

/**
 * Why servers cannot run under host names of their own here, or undefined when they can: each
 * in a UTS namespace (`unshare --uts`) whose host name is its identity. go-choria names a server
 * after its host when its configuration has no identity, which is the configuration a server has
 * after choria_provision#reprovision; without this, every lab server would come back as the same
 * node. Tried as root, then in a user namespace.
 */
export const OWN_HOST: { skip?: string; prefix: string[] } = (() => {
  for (const prefix of [["unshare", "--uts"], ["unshare", "--user", "--map-root-user", "--uts"]]) {
    try {
      execFileSync(prefix[0]!, [...prefix.slice(1), "hostname", "probe.example.net"], { stdio: "ignore" });
      return { prefix };
    } catch {
      /* next */
    }
  }
  // the tests that need it decide what a missing namespace means (renewal.test.ts fails under
  // CHORIA_REAL_REQUIRED=1); throwing here would take every real-Choria test down with it
  return { skip: "servers need host names of their own (unshare --uts, or a user namespace) and neither works here", prefix: [] };
})();

export interface ServerOptions {
  /** provisioning JWT file; default: the lab's */
  jwt?: string;
  /** lines added to the server's initial configuration */
  extraConfig?: string[];
  /** directory name under the lab's servers directory; default the identity (twins need two) */
  dirName?: string;
  /**
   * run under a host name of its own, the identity (OWN_HOST): a server whose configuration has
   * no identity, as after reprovision, is then still this node
   */
  ownHost?: boolean;
}

export interface RealServer {
  identity: string;
  dir: string;
  /** the PID stays the same across choria_provision#restart (it re-executes in place) */
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode(): number | null | undefined;
  log(): string;
  stop(): Promise<void>;
}

export interface LifecycleEvent {
  type: string;
  identity: string;
  component: string;
  subject: string;
  /** performance.now() when this client received it (arrival times for bench/real-servers.ts) */
  at: number;
}

/** Lifecycle events seen on one broker, waited on by event. */
export class EventWatch {
  readonly events: LifecycleEvent[] = [];
  private readonly waiters = new Waiters();
  private constructor(
    private readonly nc: NatsConnection,
    private readonly sub: Subscription,
  ) {}

  static async open(nc: NatsConnection): Promise<EventWatch> {
    const sub = nc.subscribe("choria.lifecycle.event.>");
    const w = new EventWatch(nc, sub);
    void (async () => {
      for await (const m of sub) {
        try {
          const ce = JSON.parse(new TextDecoder().decode(m.data)) as { type?: string; data?: { identity?: string; component?: string } };
          w.events.push({ type: String(ce.type ?? ""), identity: String(ce.data?.identity ?? ""), component: String(ce.data?.component ?? ""), subject: m.subject, at: performance.now() });
          w.waiters.notify();
        } catch {
          /* not a CloudEvent: ignore */
        }
      }
    })();
    await nc.flush();
    return w;
  }

  identities(type: string, component: string): Set<string> {
    return new Set(this.events.filter((e) => e.type.endsWith(`.${type}`) && e.component === component).map((e) => e.identity));
  }

  until(pred: (w: EventWatch) => boolean, timeoutMs: number, what: string): Promise<void> {
    return this.waiters.until(
      () => pred(this),
      () => undefined,
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => `${e.type}:${e.component}:${e.identity}`).slice(-40))}`),
    );
  }

  async close(): Promise<void> {
    this.sub.unsubscribe();
    await closeNats(this.nc);
  }
}

/**
 * Waits for a condition that has no event a test can hold (a daemon's role, a process's log
 * line written to a file), checking it every 100 ms up to the deadline.
 */
export async function pollUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Cert {
  cert: string;
  key: string;
}

export class RealLab {
  readonly root = mkdtempSync(join(tmpdir(), "cp-real-"));
  readonly caDir = join(this.root, "ca");
  readonly serversDir = join(this.root, "srv");
  provisioning!: LocalNatsServer;
  home!: LocalNatsServer;
  /** ed25519 seed / hex public key made by `choria jwt keys` */
  provSeed = join(this.root, "prov.seed");
  provPublic = join(this.root, "prov.public");
  /** the default provisioning JWT, made by `choria jwt prov` */
  jwt = join(this.root, "provisioning.jwt");
  client!: Cert;
  /** the brokers' certificate, also the placeholder a provisioning-mode server's file security names */
  brokerCert!: Cert;
  private readonly servers: RealServer[] = [];
  private readonly closers: Array<() => Promise<void>> = [];

  /** the provisioner user's password on a Choria Broker lab */
  readonly brokerPassword = "prov-broker-password";
  kind: "nats" | "choria" = "nats";
  /** the CA is an intermediate under an offline root (made with openssl); the home broker trusts only that root */
  intermediate = false;

  /**
   * `broker: "choria"` runs a real Choria Broker (`choria broker run`) as the provisioning broker:
   * TLS, the provisioning account (client_password), servers admitted by a provisioning JWT
   * signed with the lab's key (signer_cert), Choria Streams for leader election.
   */
  static async start(o: { home?: boolean; broker?: "nats" | "choria"; intermediate?: boolean } = {}): Promise<RealLab> {
    const lab = new RealLab();
    lab.kind = o.broker ?? "nats";
    lab.intermediate = o.intermediate ?? false;
    try {
      await lab.init(o.home ?? true);
    } catch (e) {
      await lab.stop();
      throw e;
    }
    return lab;
  }

  private async init(withHome: boolean): Promise<void> {
    mkdirSync(this.serversDir);
    if (this.intermediate) await this.makeIntermediateCa();
    else await initBuiltinCa(this.caDir, { key: "ecdsa" });
    const brokerCert = await this.issue("localhost", { dns: ["localhost"], ip: ["127.0.0.1"], server: true });
    this.brokerCert = brokerCert;
    if (this.kind === "nats") {
      this.provisioning = await startNatsServer({ tls: { ...brokerCert, allowNonTls: true } });
      this.closers.push(() => this.provisioning.stop());
    }
    if (withHome) {
      this.home = await startNatsServer({ tls: { ...brokerCert, ca: this.homeTrustFile, verify: true } });
      this.closers.push(() => this.home.stop());
    }
    // go-choria's file security names a client `<name>.mcollective`; our CSR policy refuses to
    // sign such names for nodes, so the lab issues it directly
    this.client = await this.issue("tester.mcollective", { client: true, rsa: true, dns: ["tester.mcollective"] });
    await this.choria(["jwt", "keys", this.provSeed, this.provPublic]);
    if (this.kind === "choria") {
      this.provisioning = await this.startChoriaBroker(brokerCert);
      this.closers.push(() => this.provisioning.stop());
    }
    await this.makeJwt(this.jwt);
  }

  private async startChoriaBroker(cert: Cert): Promise<LocalNatsServer> {
    const port = await freePort();
    const dir = join(this.root, "broker");
    mkdirSync(dir);
    const conf = [
      "identity = broker.lab",
      "loglevel = info",
      "plugin.choria.broker_network = true",
      "plugin.choria.network.listen_address = 127.0.0.1",
      `plugin.choria.network.client_port = ${port}`,
      "plugin.choria.stats_port = 0",
      ...this.fileSecurity(cert),
      `plugin.choria.network.provisioning.client_password = ${this.brokerPassword}`,
      `plugin.choria.network.provisioning.signer_cert = ${this.provPublic}`,
      `plugin.choria.network.stream.store = ${join(dir, "streams")}`,
      // replicas of -1 (the default) make the broker wait 10-70 s before creating its streams
      ...["executor", "event", "machine", "advisory", "leader_election"].map((k) => `plugin.choria.network.stream.${k}_replicas = 1`),
      // a standby can take over only once the leader's key expires (see docs/ha.md): 10 s, not 1 m
      "plugin.choria.network.stream.leader_election_ttl = 10s",
    ];
    const confFile = join(dir, "broker.conf");
    writeFileSync(confFile, conf.join("\n") + "\n");
    const child = spawn(CHORIA_BIN, ["broker", "run", "--config", confFile], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // ready once the leader election bucket exists: the last thing a Choria Broker sets up
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`choria broker not ready after 30 s: ${out.slice(-2000)}`)), 30_000);
      const onData = (b: Buffer): void => {
        out = (out + b).slice(-20000);
        if (/CHORIA_LEADER_ELECTION|Leader Election/i.test(out) && /Server is ready/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => reject(new Error(`choria broker exited ${code}: ${out.slice(-2000)}`)));
    });
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      pid: child.pid ?? -1,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const t = setTimeout(() => child.kill("SIGKILL"), 6000);
        child.kill("SIGTERM");
        await exited;
        clearTimeout(t);
      },
      async restart() {
        throw new Error("restart of a lab Choria Broker is not supported");
      },
    };
  }

  /** what the lab's clients and not-yet-provisioned servers trust: the CA, and above it the root when there is one */
  get caFile(): string {
    return this.intermediate ? join(this.root, "trust-bundle.pem") : join(this.caDir, "ca.pem");
  }

  /** what the home broker trusts: only the offline root for an intermediate lab */
  get homeTrustFile(): string {
    return this.intermediate ? join(this.root, "offline-root.pem") : this.caFile;
  }

  /** The operator's path: an openssl root signs the CSR of `ca init --intermediate`, `ca import` installs it. */
  private async makeIntermediateCa(): Promise<void> {
    const rootCert = join(this.root, "offline-root.pem");
    const rootKey = join(this.root, "offline-root-key.pem");
    const run = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", rootKey, "-out", rootCert, "-subj", "/O=Lab Org/CN=Lab Offline Root", "-days", "2",
      "-addext", "basicConstraints=critical,CA:TRUE,pathlen:1", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    const r = await initBuiltinCa(this.caDir, { key: "ecdsa", intermediate: true, commonName: "Lab Issuing CA" });
    const ext = join(this.root, "intermediate.ext");
    writeFileSync(ext, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
    const signed = join(this.root, "intermediate.pem");
    run("x509", "-req", "-in", r.csrPath!, "-CA", rootCert, "-CAkey", rootKey, "-days", "2", "-extfile", ext, "-out", signed);
    importIntermediate(this.caDir, { certPem: readFileSync(signed, "utf8"), chainPem: readFileSync(rootCert, "utf8"), certFile: signed, chainFile: rootCert });
    writeFileSync(this.caFile, readFileSync(join(this.caDir, "ca.pem"), "utf8") + readFileSync(rootCert, "utf8"));
  }

  /** the hex ed25519 public key that verifies the lab's provisioning JWTs */
  get provPublicHex(): string {
    return readFileSync(this.provPublic, "utf8").trim();
  }

  async makeJwt(file: string, flags: string[] = []): Promise<string> {
    await this.choria(["jwt", "prov", file, this.provSeed, "--token", TOKEN, "--urls", `nats://127.0.0.1:${this.provisioning.port}`, ...flags]);
    return file;
  }

  /** runs the choria binary to completion; rejects with its output on failure */
  choria(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = spawn(CHORIA_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      c.stdout.on("data", (b) => (out += b));
      c.stderr.on("data", (b) => (out += b));
      c.once("error", reject);
      c.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`choria ${args.slice(0, 2).join(" ")} exited ${code}: ${out}`))));
    });
  }

  /** a certificate from the lab's CA for brokers and clients, which nodes never get */
  async issue(cn: string, o: { dns?: string[]; ip?: string[]; server?: boolean; client?: boolean; rsa?: boolean } = {}): Promise<Cert> {
    const caCert = new x509.X509Certificate(readFileSync(join(this.caDir, "ca.pem"), "utf8"));
    const caKeyPem = readFileSync(join(this.caDir, "ca-key.pem"), "utf8");
    const caKeyDer = createPrivateKey(caKeyPem).export({ format: "der", type: "pkcs8" });
    const caAlg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const caKey = await webcrypto.subtle.importKey("pkcs8", caKeyDer, caAlg, false, ["sign"]);
    const kp = o.rsa
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
    const spki = kp.publicKey.export({ format: "der", type: "spki" });
    const pubAlg = o.rsa ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
    const publicKey = await webcrypto.subtle.importKey("spki", spki, pubAlg, true, ["verify"]);
    const sans: x509.JsonGeneralName[] = [...(o.dns ?? []).map((v) => ({ type: "dns" as const, value: v })), ...(o.ip ?? []).map((v) => ({ type: "ip" as const, value: v }))];
    const usages: string[] = [];
    if (o.server) usages.push(x509.ExtendedKeyUsage.serverAuth);
    if (o.client) usages.push(x509.ExtendedKeyUsage.clientAuth);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: Date.now().toString(16) + Math.floor(Math.random() * 1e6).toString(16),
      subject: `CN=${cn}`,
      // the CA's own encoded name: Go matches issuer to subject byte for byte
      issuer: caCert.subjectName,
      notBefore: new Date(Date.now() - 300_000),
      notAfter: new Date(Date.now() + 86_400_000),
      signingAlgorithm: caAlg,
      publicKey,
      signingKey: caKey,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        ...(usages.length ? [new x509.ExtendedKeyUsageExtension(usages)] : []),
        ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      ],
    });
    const dir = join(this.root, "certs");
    mkdirSync(dir, { recursive: true });
    const certFile = join(dir, `${cn}.pem`);
    const keyFile = join(dir, `${cn}-key.pem`);
    // under an intermediate, a certificate travels with it (what TLS presents), as nodes' do
    writeFileSync(certFile, cert.toString("pem") + "\n" + (this.intermediate ? readFileSync(join(this.caDir, "ca.pem"), "utf8") : ""));
    writeFileSync(keyFile, kp.privateKey.export({ format: "pem", type: o.rsa ? "pkcs1" : "pkcs8" }) as string, { mode: 0o600 });
    return { cert: certFile, key: keyFile };
  }

  /** go-choria configuration lines: file security with this certificate and the lab's CA, no SRV lookups */
  fileSecurity(c: Cert): string[] {
    return ["plugin.security.provider = file", `plugin.security.file.certificate = ${c.cert}`, `plugin.security.file.key = ${c.key}`, `plugin.security.file.ca = ${this.caFile}`, "plugin.choria.use_srv = false"];
  }

  /** the directory a server with this identity lives in (the policies address it by identity) */
  serverDir(identity: string): string {
    return join(this.serversDir, identity);
  }

  /**
   * Starts a real server in provisioning mode: `plugin.choria.server.provision = true` with an
   * explicit identity, so it keeps its own file (and identity) and joins the provisioning
   * collective. The file security paths must exist before provisioning, though nothing in them
   * is used until the server is configured: the provisioning broker's certificate stands in.
   */
  startServer(identity: string, o: ServerOptions = {}): RealServer {
    const dir = join(this.serversDir, o.dirName ?? identity);
    mkdirSync(dir, { recursive: true });
    const conf = [
      `identity = ${identity}`,
      "plugin.choria.server.provision = true",
      // any existing certificate satisfies the file provider's pre-provisioning existence check
      ...this.fileSecurity(this.brokerCert),
      `logfile = ${join(dir, "server.log")}`,
      "loglevel = info",
      ...(o.extraConfig ?? []),
    ];
    const confFile = join(dir, "server.conf");
    writeFileSync(confFile, conf.join("\n") + "\n");
    const argv = [CHORIA_BIN, "server", "run", `--config=${confFile}`, "--provisioning-jwt", o.jwt ?? this.jwt];
    if (o.ownHost && OWN_HOST.skip) throw new Error(OWN_HOST.skip);
    // the shell sets the host name and execs the server: one PID throughout, which
    // choria_provision#restart keeps re-executing in the same namespace
    const [cmd, ...args] = o.ownHost ? [...OWN_HOST.prefix, "sh", "-c", 'hostname "$0" && exec "$@"', identity, ...argv] : argv;
    const child: ChildProcess = spawn(cmd!, args, {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, GOMAXPROCS: "1" },
    });
    let out = "";
    child.stdout!.on("data", (b) => (out = (out + b).slice(-20000)));
    child.stderr!.on("data", (b) => (out = (out + b).slice(-20000)));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const s: RealServer = {
      identity,
      dir,
      pid: child.pid ?? -1,
      exited,
      exitCode: () => (child.exitCode === null && child.signalCode === null ? undefined : child.exitCode),
      log: () => {
        let file = "";
        try {
          file = readFileSync(join(dir, "server.log"), "utf8").slice(-6000);
        } catch {
          /* not written yet */
        }
        return `${out}\n${file}`;
      },
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const t = setTimeout(() => child.kill("SIGKILL"), 6000);
        child.kill("SIGTERM");
        await exited;
        clearTimeout(t);
      },
    };
    this.servers.push(s);
    return s;
  }


  /** a connection to the home broker as a verified mTLS client of our CA */
  homeConnection(): Promise<NatsConnection> {
    return connectNats({ servers: this.home.url, name: "real-lab-home", tls: { caFile: this.caFile, certFile: this.client.cert, keyFile: this.client.key }, maxReconnectAttempts: 5 });
  }

  /**
   * Broadcast discovery on the main collective of the home broker, signed as go-choria's file
   * security expects of a client (`choria=tester.mcollective`, certificate valid for that name and
   * on its allow list `\.mcollective$`): only a
   * server that joined the collective, trusts our CA and runs with protocol security answers.
   * Resolves with the identities that replied within `windowMs`.
   */
  async discoverHome(collective = "mcollective", windowMs = 3000): Promise<string[]> {
    const nc = await this.homeConnection();
    try {
      const key = createPrivateKey(readFileSync(this.client.key));
      const pubcert = readFileSync(this.client.cert, "utf8");
      const enc = encodeRequest({
        agent: "discovery",
        payload: DISCOVERY_PING_PAYLOAD,
        callerid: "choria=tester.mcollective",
        senderid: "tester.mcollective",
        collective,
        filter: agentFilter("rpcutil"),
        pubcert,
        sign: (msg) => sign("sha256", Buffer.from(msg), key).toString("base64"),
      });
      const seen = new Set<string>();
      const sub = nc.subscribe(enc.replyTo);
      const done = (async () => {
        for await (const m of sub) seen.add(decodeReply(m.data).sender);
      })();
      nc.publish(broadcastSubject("discovery", collective), enc.bytes);
      await nc.flush();
      await new Promise((r) => setTimeout(r, windowMs)); // a broadcast has no "all replied" event: a window is its definition
      sub.unsubscribe();
      await done;
      return [...seen].sort();
    } finally {
      await closeNats(nc);
    }
  }

  provisioningConnection(): Promise<NatsConnection> {
    return connectNats({ servers: this.provisioning.url, name: "real-lab-prov", tls: { caFile: this.caFile }, maxReconnectAttempts: 5 });
  }

  /** writes a policy directory whose brokers and paths fit this lab; returns it */
  writePolicy(name: string, yaml: string): { policies: string; rules: string } {
    const policies = join(this.root, `policies-${name}`);
    const rules = join(this.root, `rules-${name}`);
    mkdirSync(policies, { recursive: true });
    mkdirSync(rules, { recursive: true });
    writeFileSync(join(policies, `${name}.yaml`), yaml);
    return { policies, rules };
  }

  /**
   * The daemon's connection settings for the provisioning broker. A Choria Broker admits the
   * `provisioner` user only with its password over verified mutual TLS.
   */
  async daemonBroker(): Promise<{ broker: string; tls: { ca: string; cert?: string; key?: string }; broker_user?: string; broker_password_env?: string }> {
    if (this.kind === "nats") return { broker: this.provisioning.url, tls: { ca: this.caFile } };
    this.provisionerCert ??= await this.issue("provisioner.lab", { client: true });
    return { broker: this.provisioning.url, tls: { ca: this.caFile, ...this.provisionerCert }, broker_user: "provisioner", broker_password_env: "LAB_BROKER_PASSWORD" };
  }

  /** environment for a daemon of this lab (the token; the broker password on a Choria Broker) */
  daemonEnv(): Record<string, string> {
    return { CHORIA_PROVISIONER_TOKEN: TOKEN, LAB_BROKER_PASSWORD: this.brokerPassword };
  }

  private provisionerCert?: Cert;

  /**
   * A daemon provisioning this lab's servers: its broker settings, the lab's CA, a restart splay
   * of 1 and the lab's environment, under `cfg`; stopped with the lab.
   */
  async startDaemon(cfg: ConfigFile): Promise<TestDaemon> {
    const daemon = await startTestDaemon(this.provisioning.url, { ...(await this.daemonBroker()), ca: { dir: this.caDir }, restart_splay: 1, ...cfg }, {}, this.daemonEnv());
    this.onStop(() => daemon.stop(5000));
    return daemon;
  }

  onStop(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop().catch(() => undefined)));
    for (const c of this.closers.reverse()) await c().catch(() => undefined);
    if (!process.env.CHORIA_REAL_KEEP) rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * A policy for lab servers: one home broker set, and the configuration a real server needs to
 * come up there with the certificate we signed. The ssl directory is the one the server's
 * gencsr wrote its key to: <config dir>/ssl, and the config dir is named by identity.
 */
export function homePolicy(lab: RealLab, o: { version?: string; rules?: string; extraConfig?: Record<string, string>; brokerSets?: Record<string, string[]>; validityDays?: number; actionPolicies?: Record<string, string> } = {}): string {
  const sets = Object.entries(o.brokerSets ?? {}).map(([k, v]) => `\n  ${k}: [${v.join(", ")}]`).join("");
  const extra = Object.entries(o.extraConfig ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return `apiVersion: choria-provisioner/v1
kind: Policy
metadata:
  name: lab
  version: "${o.version ?? "1"}"
vars:
  root: ${lab.serversDir}
brokerSets:
  home: [${lab.home ? lab.home.url : "nats://127.0.0.1:1"}]${sets}
defaults:
  configuration:
    loglevel: info
    logfile: "{{ vars.root }}/{{ identity }}/server.log"
    collectives: mcollective
    main_collective: mcollective
    plugin.choria.use_srv: "false"
    plugin.security.provider: file
    plugin.security.file.certificate: "{{ vars.root }}/{{ identity }}/ssl/certificate.pem"
    plugin.security.file.key: "{{ vars.root }}/{{ identity }}/ssl/private.pem"
    plugin.security.file.ca: "{{ vars.root }}/{{ identity }}/ssl/ca.pem"
${extra.join("\n")}${o.validityDays ? `\n  certificate: { validityDays: ${o.validityDays} }` : ""}${o.actionPolicies ? `\n  actionPolicies: ${JSON.stringify(o.actionPolicies)}` : ""}
rules:
  - name: home
    conditions:
      all:
        - { fact: identity, operator: exists, value: true }
    then:
      brokerSet: home
${o.rules ?? ""}`;
}
