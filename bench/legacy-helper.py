#!/usr/bin/env python3
"""A realistic legacy provisioner helper for `npm run bench`: the seed helper's decision
(policies/examples/seed-helper.yaml) written the way users of the reference write helpers. It
parses the request, reads the inventory (a JSON string inside the JSON), picks brokers by
country and adds the registration and file-security (PKI) settings. Python's standard library
only; compare bench/legacy-helper.sh, the cheapest possible helper."""
import json
import sys

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


def main():
    req = json.load(sys.stdin)
    inventory = json.loads(req.get("inventory") or "{}")
    facts = inventory.get("facts") or {}
    country = str(facts.get("country", "")).lower()
    config = {
        "identity": req["identity"],
        "plugin.choria.server.provision": "false",
        "plugin.choria.middleware_hosts": BROKERS.get(country, "nats://broker.choria.local:4222"),
        "loglevel": "info",
        "rpcauthorization": "0",
        "plugin.choria.status_file_path": "/var/log/choria-status.json",
        "plugin.choria.submission.spool": "/var/lib/choria/submission",
        "plugin.choria.machine.store": "/etc/choria/machine",
        "registerinterval": "300",
        "registration": "file_content",
        "plugin.choria.registration.file_content.data": "/etc/node/metadata.json",
        "plugin.security.provider": "file",
        "plugin.security.file.certificate": SSLDIR + "/certificate.pem",
        "plugin.security.file.key": SSLDIR + "/private.pem",
        "plugin.security.file.ca": SSLDIR + "/ca.pem",
        "plugin.security.file.cache": SSLDIR + "/cache",
    }
    json.dump({"defer": False, "msg": "configured by the seed helper", "certificate": "", "ca": "", "ssldir": "", "configuration": config}, sys.stdout)


main()
