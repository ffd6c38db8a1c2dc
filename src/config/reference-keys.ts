/**
 * Keys of the reference provisioner's configuration (docs/migration.md's table) that are not
 * keys here, with what to write instead, so an unknown-key error can say "did you mean ...?".
 * test/docs/docs.test.ts holds this list to the table.
 */
export const REFERENCE_KEYS: Readonly<Record<string, string>> = {
  interval: "did you mean discovery.interval?",
  logfile: "did you mean log.file?",
  loglevel: "did you mean log.level?",
  token: "did you mean token_env? The provisioning token comes from the environment (CHORIA_PROVISIONER_TOKEN by default), never from this file",
  monitor_port: 'did you mean admin.listen (e.g. "0.0.0.0:8080")?',
  broker_provisioning_password: "did you mean broker_user: provisioner and the environment variable CHORIA_PROVISIONER_BROKER_PASSWORD (broker_password_env)?",
  choria_insecure: "did you mean tls.insecure? Or leave tls out",
  lifecycle_component: "did you mean intake.lifecycle_component?",
  "features.upgrades": "did you mean the upgrade outcome of a policy (or the helper's upgrade), with upgrade_repository?",
  upgrades_repository: "did you mean upgrade_repository?",
  upgrades_optional: "the reference's upgrades_optional has no equivalent: a failed release_update ends the node's flow with an error",
  broker_port: "the reference's embedded broker has no equivalent: run the Choria Broker or nats-server",
  rego_policy: "did you mean policies? Policies are YAML documents in that directory",
};
