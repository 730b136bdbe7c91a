#!/bin/bash
# The demo, inside the guest: sample VMs on the simulated SmartOS host, then two real backups of
# one of them to the backup host (a full, then an incremental run), and what arrived there.
set -euo pipefail
ROOT=/mnt/host
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "creating sample VMs (one per brand) on the SmartOS host"
node $ROOT/build/test/sim/fixtures.js create >/dev/null
vmadm list -o uuid,type,ram,state,alias
uuid=$(vmadm lookup -1 brand=joyent)

mkdir -p /opt/zonecopy-demo
cat >/opt/zonecopy-demo/configuration.json <<JSON
{
  "backupDestination": "127.0.0.2",
  "backupDestinationUsername": "root",
  "backupDestinationPrivateKeyPath": "/root/.ssh/id_ed25519",
  "knownHostsPath": "/root/.ssh/known_hosts",
  "backupDestinationBasePath": "backup/zones",
  "transferStrategy": "ssh",
  "snapshotIdentifier": "smartcopy",
  "localSnapshotLimit": 3,
  "remoteSnapshotLimit": 5,
  "logDirectory": "/var/log/zonecopy"
}
JSON
export ZONECOPY_CONFIG=/opt/zonecopy-demo/configuration.json

say "first backup of $uuid (full)"
$ROOT/bin/backup "$uuid" --groupName daily

say "writing new data into the VM, then the second backup (incremental)"
mkdir -p "/zones/$uuid/root/var/tmp" && head -c 2M /dev/urandom >"/zones/$uuid/root/var/tmp/new-data.bin"
$ROOT/bin/backup "$uuid" --groupName daily

say "on the backup host (zfs list over ssh root@127.0.0.2)"
ssh root@127.0.0.2 zfs list -t all -r -o name,used,guid backup/zones
say "VM specs stored per snapshot on the backup host"
ssh root@127.0.0.2 ls -l "/var/zonecopy/vmspecs/$uuid"
say "log file"
ls -l /var/log/zonecopy
