#!/bin/bash
# Runs inside the guest after boot (from the 9p share) and makes it two hosts:
#  - the SmartOS host: pool `zones` (with zones/cores), vmadm/imgadm simulators on PATH, root's
#    ssh client key and a known_hosts that pins the backup host;
#  - the backup host: pool `backup`, reached only over a real sshd on 127.0.0.2:22 with key-only
#    root login and its own host key. zonecopy logs in there as `zcbackup`, a second uid-0 user whose
#    login shell is ZC_BACKUP_SHELL (csh by default, as root's on FreeBSD <= 13; dash for the other
#    test group): sshd runs every remote command through it (issue 17 §2.5). `ssh root@…` in the
#    tests themselves keeps root's bash.
# Idempotent: `reset` destroys and recreates both pools and the simulator state.
set -euo pipefail
ROOT=${ZC_PROJECT:-/mnt/host}
STATE=/etc/zonecopy-test
mode=${1:-setup}

pools() {
  zpool destroy -f zones 2>/dev/null || true
  zpool destroy -f backup 2>/dev/null || true
  zpool destroy -f spare 2>/dev/null || true
  # both pools on their own disk; atime off as SmartOS sets it on zones
  zpool create -f -o ashift=12 -O atime=off -O mountpoint=/zones zones /dev/disk/by-id/virtio-zc-zones
  zfs create -o compression=gzip -o mountpoint=/zones/global/cores zones/cores
  zpool create -f -o ashift=12 -O atime=off -O mountpoint=/backup backup /dev/disk/by-id/virtio-zc-backup
  rm -rf /etc/zones /var/imgadm /var/zonecopy /var/log/zonecopy
  mkdir -p /etc/zones
}

backup_sshd() {
  mkdir -p "$STATE/backup-host" /root/.ssh /run/sshd
  chmod 700 /root/.ssh
  [ -f "$STATE/backup-host/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C backup-host -f "$STATE/backup-host/ssh_host_ed25519_key"
  [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C smartos-host -f /root/.ssh/id_ed25519
  cp /root/.ssh/id_ed25519.pub "$STATE/backup-host/authorized_keys"
  chmod 600 "$STATE/backup-host/authorized_keys"
  cat >"$STATE/backup-host/sshd_config" <<EOF
ListenAddress 127.0.0.2
Port 22
HostKey $STATE/backup-host/ssh_host_ed25519_key
PidFile $STATE/backup-host/sshd.pid
AuthorizedKeysFile $STATE/backup-host/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxSessions 128
MaxStartups 128
EOF
  if ! { [ -f "$STATE/backup-host/sshd.pid" ] && kill -0 "$(cat "$STATE/backup-host/sshd.pid")" 2>/dev/null; }; then
    /usr/sbin/sshd -f "$STATE/backup-host/sshd_config" -E "$STATE/backup-host/sshd.log"
  fi
  echo "127.0.0.2 $(cut -d' ' -f1,2 "$STATE/backup-host/ssh_host_ed25519_key.pub")" >/root/.ssh/known_hosts
}

backup_user() {
  local shell
  shell=$(command -v "${ZC_BACKUP_SHELL:-csh}") || { echo "no login shell ${ZC_BACKUP_SHELL:-csh} in the guest (build.sh GUEST_SHELLS)" >&2; exit 1; }
  sed -i '/^zcbackup:/d' /etc/passwd /etc/shadow
  echo "zcbackup:x:0:0:zonecopy backup host user:/root:$shell" >>/etc/passwd
  echo 'zcbackup:*:19000:0:99999:7:::' >>/etc/shadow
  # csh reads ~/.cshrc on every remote command: none, as on a fresh host
  rm -f /root/.cshrc /root/.login
}

simulators() {
  local tool
  for tool in vmadm imgadm zonecfg; do
    printf '#!/bin/sh\nexec /usr/local/bin/node %s/build/test/sim/%s.js "$@"\n' "$ROOT" "$tool" >"/usr/sbin/$tool"
    chmod 755 "/usr/sbin/$tool"
  done
}

case "$mode" in
  setup) pools; backup_sshd; backup_user; simulators ;;
  reset) pools ;;
  *) echo "usage: hosts-setup.sh [setup|reset]" >&2; exit 2 ;;
esac
echo "hosts ready: zones ($(zpool list -H -o size zones)), backup ($(zpool list -H -o size backup)) via zcbackup@127.0.0.2 (login shell $(awk -F: '$1 == "zcbackup" {print $7}' /etc/passwd))"
