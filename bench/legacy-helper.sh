#!/bin/sh
# A minimal legacy provisioner helper for `npm run bench`: reads the request JSON on stdin and
# prints a fixed configuration like the seed helper's (policies/examples/seed-helper.yaml).
# Plain sh with builtins only, so the comparison charges the exec mode nothing but what any
# helper costs: a process spawn and the JSON round trip.
while read -r _line; do :; done
printf '%s' '{"defer":false,"msg":"fixed bench configuration","certificate":"","ca":"","ssldir":"","configuration":{"plugin.choria.server.provision":"false","plugin.choria.middleware_hosts":"nats://broker.choria.local:4222","loglevel":"info","rpcauthorization":"0","plugin.choria.status_file_path":"/var/log/choria-status.json","plugin.choria.submission.spool":"/var/lib/choria/submission","plugin.choria.machine.store":"/etc/choria/machine","registerinterval":"300","registration":"file_content","plugin.choria.registration.file_content.data":"/etc/node/metadata.json","plugin.security.provider":"file","plugin.security.file.certificate":"/etc/choria/ssl/certificate.pem","plugin.security.file.key":"/etc/choria/ssl/private.pem","plugin.security.file.ca":"/etc/choria/ssl/ca.pem","plugin.security.file.cache":"/etc/choria/ssl/cache"}}'
