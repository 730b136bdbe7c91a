#!/bin/bash
# The per-dataset way (what per-dataset tools do, one dataset at a time): for each dataset, find
# its newest snapshot, take a new one, and send it incrementally over its own ssh connection.
#   per-dataset-baseline.sh SNAPSHOT-NAME BASE DATASET...
# Prints the number of programs it started (local and remote) on its last line.
set -euo pipefail
snap=$1 base=$2
shift 2
programs=0
for ds in "$@"; do
  prev=$(zfs list -H -t snapshot -d 1 -s createtxg -o name "$ds" | tail -1)
  zfs snapshot "$ds@$snap"
  zfs send -i "$prev" "$ds@$snap" | ssh -o BatchMode=yes -c aes128-gcm@openssh.com root@127.0.0.2 zfs receive -F "$base/${ds#*/}"
  programs=$((programs + 6))   # zfs list, tail, zfs snapshot, zfs send, ssh; zfs receive on the backup host
done
echo "programs $programs"
