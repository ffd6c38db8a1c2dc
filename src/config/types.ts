/** The configuration file as written (schemas/provisioner-config.json). */
export type Duration = string | number;

/** how to log in to a home broker (arrival) */
export interface HomeLogin {
  tls?: { ca?: string; cert?: string; key?: string; insecure?: boolean };
  broker_user?: string;
  broker_password_env?: string;
  broker_token_env?: string;
  broker_creds?: string;
}

export interface ConfigFile {
  site?: string;
  identity?: string;
  broker?: string | string[];
  broker_user?: string;
  broker_password_env?: string;
  broker_token_env?: string;
  broker_creds?: string;
  tls?: { ca?: string; cert?: string; key?: string; insecure?: boolean };
  token_env?: string;
  policies?: string;
  rules?: string;
  policy?: string;
  test_on_reload?: boolean;
  policy_tests?: string;
  watch?: boolean;
  workers?: number;
  queue?: { max_size?: number; max_wait?: Duration };
  discovery?: { interval?: Duration; timeout?: Duration; quiet?: Duration; at_start?: boolean };
  intake?: { lifecycle_component?: string; alive?: boolean; registration?: boolean; legacy_registration?: boolean; identity_pattern?: string };
  features?: { pki?: boolean; jwt?: boolean; ed25519?: boolean };
  jwt_verify_cert?: string;
  jwt_signing_key?: string;
  jwt_signing_token?: string;
  server_jwt_validity?: Duration;
  protocol?: 1 | 2;
  client_jwt?: string;
  ca?: { type?: "builtin" | "cfssl" | "exec"; dir?: string; workers?: number; url?: string; profile?: string; label?: string; command?: string; args?: string[]; ca_file?: string; timeout?: Duration; ledger?: string; crl_file?: string; crl_validity?: Duration; revoke_on_shutdown?: boolean };
  cert_deny_list?: string[];
  restart_splay?: number;
  hold_after_restart?: Duration;
  hold_after_refusal?: Duration;
  upgrade_repository?: string;
  rpc?: { inventory_timeout?: Duration; provision_timeout?: Duration; max_timeouts?: number; backoff_max?: Duration };
  admin?: { listen?: string; token_env?: string; allow_remote?: boolean };
  audit?: { file?: string; subject?: string };
  record?: string;
  record_limits?: { max_depth?: number; max_bytes?: number };
  log?: { level?: string; file?: string };
  helper?: string;
  helper_args?: string[];
  helper_timeout?: Duration;
  helper_concurrency?: number;
  leader_election?: boolean;
  active_active?: boolean;
  arrival?: HomeLogin & {
    deadline?: Duration;
    homes?: Array<HomeLogin & { name?: string; broker: string | string[]; broker_sets?: string[] }>;
    broker_set_health?: { window?: number; min_lost?: number };
  };
  rollout?: { enabled?: boolean; canary?: number; min_arrivals?: number; max_lost?: number | string; on_failure?: "revert" | "pause"; trust_initial?: boolean; state_file?: string };
  renewal?: { enabled?: boolean; window?: Duration; rate?: string | number; burst?: number; retry_after?: Duration; timeout?: Duration; interval?: Duration; collective?: string; cert?: string; key?: string; token_env?: string };
  ha?: { api_prefix?: string; election_ttl?: Duration; stand_down?: Duration; claim_ttl?: Duration; replicas?: number };
}

type With<T, K extends keyof T> = T & Required<Pick<T, K>>;

/**
 * The document after the schema's defaults are in (ajv `useDefaults`, config/schema.ts): every
 * key the schema gives a default is present. The values live in the schema only.
 */
export type DefaultedConfig = With<ConfigFile, "site" | "broker" | "broker_password_env" | "token_env" | "policies" | "test_on_reload" | "watch" | "workers" | "server_jwt_validity" | "protocol" | "restart_splay" | "hold_after_restart" | "hold_after_refusal" | "leader_election" | "active_active" | "helper_timeout"> & {
  queue: With<NonNullable<ConfigFile["queue"]>, "max_size">;
  discovery: With<NonNullable<ConfigFile["discovery"]>, "interval" | "timeout" | "quiet" | "at_start">;
  intake: With<NonNullable<ConfigFile["intake"]>, "lifecycle_component" | "alive" | "registration" | "legacy_registration">;
  features: With<NonNullable<ConfigFile["features"]>, "jwt" | "ed25519">;
  ca: With<NonNullable<ConfigFile["ca"]>, "type" | "timeout" | "crl_validity" | "revoke_on_shutdown">;
  rpc: With<NonNullable<ConfigFile["rpc"]>, "inventory_timeout" | "provision_timeout" | "max_timeouts" | "backoff_max">;
  admin: With<NonNullable<ConfigFile["admin"]>, "listen" | "token_env" | "allow_remote">;
  record_limits: Required<NonNullable<ConfigFile["record_limits"]>>;
  log: With<NonNullable<ConfigFile["log"]>, "level">;
};

