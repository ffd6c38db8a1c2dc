#!/usr/bin/env python3
"""A realistic legacy provisioner helper for `npm run bench`: the seed helper's decision
(policies/examples/seed-helper.yaml) written the way users of the reference write helpers. It
parses the request, reads the inventory (a JSON string inside the JSON), picks brokers by
country and adds the registration and file-security (PKI) settings. Python's standard library
only; compare bench/legacy-helper.sh, the cheapest possible helper.

With `--cfssl URL --ca FILE` it also signs the node's CSR through the cfssl API of a `cfssl serve`
at URL, as operators' helpers for the reference provisioner do (bench/reference.ts), and sends the
CA certificate read from FILE.

With `--home URL` (bench/real-servers.ts, real go-choria servers) the configuration brings the
node to its real home: URL as its broker whatever its country, the file-security paths under the
ssldir the node reported with its CSR, and its node-local files (log, status, spool, machine
store, registration data) beside that ssldir, in the node's own configuration directory."""
import json
import os
import sys
import urllib.request

BROKERS = {
    "nl": "nats://broker-nl.choria.local:4222",
    "us": "nats://broker-us.choria.local:4222",
    "de": "nats://broker-de.choria.local:4222",
    "gb": "nats://broker-gb.choria.local:4222",
    "uk": "nats://broker-gb.choria.local:4222",
    "fr": "nats://broker-fr.choria.local:4222",
    "jp": "nats://broker-jp.choria.local:4222",
}
SSLDIR = "/etc/choria/ssl"


def sign(url, csr, identity):
    body = json.dumps({"certificate_request": csr, "hosts": [identity]}).encode()
    post = urllib.request.Request(url + "/api/v1/cfssl/sign", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=10) as r:
        reply = json.load(r)
    if not reply.get("success"):
        raise SystemExit("cfssl could not sign for %s: %s" % (identity, reply.get("errors")))
    return reply["result"]["certificate"]


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    req = json.load(sys.stdin)
    inventory = json.loads(req.get("inventory") or "{}")
    facts = inventory.get("facts") or {}
    country = str(facts.get("country", "")).lower()
    csr = req.get("csr") or {}
    home = args.get("--home")
    ssldir = (home and csr.get("ssldir")) or SSLDIR
    local = os.path.dirname(ssldir) if home else None
    config = {
        "identity": req["identity"],
        "plugin.choria.server.provision": "false",
        "plugin.choria.middleware_hosts": home or BROKERS.get(country, "nats://broker.choria.local:4222"),
        "loglevel": "info",
        "rpcauthorization": "0",
        "plugin.choria.status_file_path": local + "/choria-status.json" if local else "/var/log/choria-status.json",
        "plugin.choria.submission.spool": local + "/submission" if local else "/var/lib/choria/submission",
        "plugin.choria.machine.store": local + "/machine" if local else "/etc/choria/machine",
        "registerinterval": "300",
        "registration": "file_content",
        "plugin.choria.registration.file_content.data": local + "/metadata.json" if local else "/etc/node/metadata.json",
        "plugin.security.provider": "file",
        "plugin.security.file.certificate": ssldir + "/certificate.pem",
        "plugin.security.file.key": ssldir + "/private.pem",
        "plugin.security.file.ca": ssldir + "/ca.pem",
        "plugin.security.file.cache": ssldir + "/cache",
    }
    if local:
        config["logfile"] = local + "/server.log"
        config["plugin.choria.use_srv"] = "false"
    reply = {"defer": False, "msg": "configured by the seed helper", "certificate": "", "ca": "", "ssldir": "", "configuration": config}
    if "--cfssl" in args and csr.get("csr"):
        reply["certificate"] = sign(args["--cfssl"], csr["csr"], req["identity"])
        with open(args["--ca"]) as f:
            reply["ca"] = f.read()
        reply["ssldir"] = csr.get("ssldir") or SSLDIR
    json.dump(reply, sys.stdout)


main()
