/**
 * The environment handed to programs we run (legacy helpers, exec signers): everything the
 * operator set, minus this daemon's own secrets. A helper needs PATH and its own settings,
 * never the provisioning token, the admin token or the broker password.
 */
const SECRET_ENV = /^CHORIA_PROVISIONER_|TOKEN|PASSWORD|SECRET/i;

export function childEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!SECRET_ENV.test(k)) out[k] = v;
  return { ...out, ...extra };
}
