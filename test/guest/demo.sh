#!/bin/bash
# The demo, inside the guest: sample VMs (one per brand) on the simulated SmartOS host; every VM
# backed up twice with --all (a full, then an incremental run) while a mail receiver saves the
# report; status; the service running one cycle with its metrics scraped; and a restore.
set -euo pipefail
ROOT=/mnt/host
ZC=$ROOT/bin/zonecopy
# in the project's build folder, so the HTML opens in a browser on this machine too
MAIL=$ROOT/build/demo-mail
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "creating sample VMs (one per brand) on the SmartOS host"
node $ROOT/build/test/sim/fixtures.js create >/dev/null
vmadm list -o uuid,type,ram,state,alias

rm -rf "$MAIL"
node $ROOT/build/test/guest/demo-mail.js 2525 "$MAIL" &
mail_pid=$!
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
  kill "$mail_pid" 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p /opt/zonecopy-demo
cat >/opt/zonecopy-demo/configuration.json <<JSON
{
  "backupDestination": "127.0.0.2",
  "backupDestinationUsername": "root",
  "backupDestinationPrivateKeyPath": "/root/.ssh/id_ed25519",
  "knownHostsPath": "/root/.ssh/known_hosts",
  "backupDestinationBasePath": "backup/zones",
  "localSnapshotLimit": 3,
  "remoteSnapshotLimit": 5,
  "logDirectory": "/var/log/zonecopy",
  "smtpHostname": "127.0.0.1",
  "smtpPort": 2525,
  "smtpFromAddress": "zonecopy@smartos.demo",
  "smtpToAddress": "ops@example.demo",
  "serviceStateFile": "/var/tmp/zonecopy-demo-service.json",
  "policies": [
    { "name": "continuous", "vms": { "filter": ["brand=joyent"] }, "every": "15s", "group": "often" },
    { "name": "nightly", "vms": { "all": true }, "schedule": "0 3 * * *", "group": "daily" }
  ]
}
JSON
export ZONECOPY_CONFIG=/opt/zonecopy-demo/configuration.json

say "first backup of every VM (zonecopy backup --all: full streams, two VMs side by side)"
$ZC backup --all --groupName daily

say "new data in the OS zone, then the second run (incremental: only what changed moves)"
uuid=$(vmadm lookup -1 brand=joyent)
mkdir -p "/zones/$uuid/root/var/tmp" && head -c 2M /dev/urandom >"/zones/$uuid/root/var/tmp/new-data.bin"
$ZC backup --all --groupName daily

say "the report as it arrived by email (build/demo-mail/ has each as text and as HTML for a browser)"
sleep 1
ls "$MAIL"
last=$(find "$MAIL" -name '*.txt' | sort -V | tail -1)
sed -n '1,12p' "$last"

say "zonecopy status: every VM's backups on the backup host, and how old they are"
$ZC status

say "zonecopy serve: the policies of the configuration (the OS zone every 15 s, all VMs nightly), metrics on 127.0.0.1:9464"
$ZC serve --metrics-listen 127.0.0.1:9464 &
serve_pid=$!
for _ in $(seq 90); do
  grep -q '"lastSuccessAt"' /var/tmp/zonecopy-demo-service.json 2>/dev/null && break
  sleep 1
done
say "the metrics endpoint, scraped once (GET http://127.0.0.1:9464/metrics)"
node -e 'fetch("http://127.0.0.1:9464/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))' | grep -E '^zonecopy_(last_success|sent_bytes|rpo_lag|policy_cycles)' | head -12
say "zonecopy status --watch, one frame"
$ZC status --watch --interval 1 >/var/tmp/zonecopy-demo-watch.txt &
watch_pid=$!
# node starts slowly under emulation: wait for its first frame, then let it draw one more
for _ in $(seq 60); do
  [ -s /var/tmp/zonecopy-demo-watch.txt ] && break
  sleep 0.5
done
sleep 1.5
kill -INT "$watch_pid" 2>/dev/null || true
wait "$watch_pid" || true
# the last frame drawn (the view redraws in place on a terminal)
sed 's/\x1b\[[0-9;]*[A-Za-z]//g' /var/tmp/zonecopy-demo-watch.txt | tail -15
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=

say "restore: the OS zone replaced by its latest backup (received beside it first, then swapped in, started)"
$ZC restore "$uuid" --force --start
vmadm list -o uuid,type,state,alias

say "on the backup host (zfs list over ssh root@127.0.0.2)"
ssh root@127.0.0.2 zfs list -t snapshot -r -o name,used backup/zones | head -20
