#!/bin/bash
# Runs inside the guest after boot (from the 9p share) and makes it two hosts:
#  - the SmartOS host: pool `zones` (with zones/cores), vmadm/imgadm simulators on PATH, root's
#    ssh client key and a known_hosts that pins the backup host;
#  - the backup host: pool `backup`, reached only over a real sshd on 127.0.0.2:22 with key-only
#    root login and its own host key. zonecopy logs in there as `zcbackup`, a second uid-0 user whose
#    login shell is ZC_BACKUP_SHELL (csh by default, as root's on FreeBSD <= 13; dash for the other
#    test group): sshd runs every remote command through it (issue 17 §2.5). `ssh root@…` in the
#    tests themselves keeps root's bash.
#  - the SmartOS global zone's environment (shared/research/illumos.md): /root a tmpfs that `reboot`
#    empties, /tmp a small tmpfs, the GNU-only tools (printenv, sha256sum, timeout, flock, stdbuf)
#    on neither host's default PATH, illumos' digest(1) in /usr/bin, pkgsrc's tools (mbuffer, zstd, gpg, pigz, node) in /opt/local/bin,
#    off cron's PATH (/usr/sbin:/usr/bin). The backup host's sshd sessions find them in /usr/local/bin,
#    as a Linux backup host finds its packages. The SmartOS host's key and known_hosts are kept in
#    /opt/zonecopy/etc, which survives a reboot.
# Idempotent: `reset` destroys and recreates both pools and the simulator state; `reboot` empties
# /root; `root-ssh` puts root's own ssh key back afterwards (the tests' `ssh root@127.0.0.2`).
set -euo pipefail
ROOT=${ZC_PROJECT:-/mnt/host}
STATE=/etc/zonecopy-test
mode=${1:-setup}

# zpool create partitions the disk and waits a few seconds for udev's -part1 link, which a busy
# machine (guests side by side under emulation) may not make in time: settle, and try again.
create_pool() {
  local try
  for try in 1 2 3; do
    udevadm settle --timeout=60 || true
    if zpool create -f -o ashift=12 -O atime=off -O mountpoint="$2" "$1" "/dev/disk/by-id/virtio-zc-$1"; then return 0; fi
    zpool destroy -f "$1" 2>/dev/null || true
    echo "hosts-setup: zpool create $1 failed (try $try of 3)" >&2
  done
  return 1
}

pools() {
  zpool destroy -f zones 2>/dev/null || true
  zpool destroy -f backup 2>/dev/null || true
  zpool destroy -f spare 2>/dev/null || true
  # both pools on their own disk; atime off as SmartOS sets it on zones
  create_pool zones /zones
  zfs create -o compression=gzip -o mountpoint=/zones/global/cores zones/cores
  create_pool backup /backup
  rm -rf /etc/zones /var/imgadm /var/zonecopy /var/log/zonecopy
  mkdir -p /etc/zones
}

# Where the SmartOS host keeps what must survive a reboot (/opt persists; /root does not).
KEEP=/opt/zonecopy/etc/ssh
GNU_ONLY=/usr/local/lib/zc-gnu-only

backup_sshd() {
  mkdir -p "$STATE/backup-host" "$KEEP" /run/sshd
  [ -f "$STATE/backup-host/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C backup-host -f "$STATE/backup-host/ssh_host_ed25519_key"
  [ -f "$KEEP/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C smartos-host -f "$KEEP/id_ed25519"
  cp "$KEEP/id_ed25519.pub" "$STATE/backup-host/authorized_keys"
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
  echo "127.0.0.2 $(cut -d' ' -f1,2 "$STATE/backup-host/ssh_host_ed25519_key.pub")" >"$KEEP/known_hosts"
  root_ssh
}

# Copies of the key and known_hosts where the demo and the bench look (gone after `reboot`, as on SmartOS).
root_ssh() {
  install -d -m 700 /root/.ssh
  cp "$KEEP/id_ed25519" "$KEEP/id_ed25519.pub" "$KEEP/known_hosts" /root/.ssh/
}

# A fresh, empty /root, as every boot of a SmartOS global zone gives (the ramdisk); only the
# control sshd's authorized_keys (the test driver's own way in) is put back.
ramdisk_root() {
  local keys
  keys=$(cat /root/.ssh/authorized_keys)
  if mountpoint -q /root; then umount -l /root; fi
  mount -t tmpfs -o mode=700,size=16m zc-root /root
  install -d -m 700 /root/.ssh
  printf '%s\n' "$keys" >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
}

smartos_env() {
  mkdir -p "$GNU_ONLY" /opt/local/bin
  local tool
  for tool in printenv sha256sum timeout flock stdbuf; do
    if [ -f "/usr/bin/$tool" ]; then mv "/usr/bin/$tool" "$GNU_ONLY/$tool"; fi
  done
  for tool in mbuffer zstd gpg pigz; do
    if [ -f "/usr/bin/$tool" ] && [ ! -L "/usr/bin/$tool" ]; then mv "/usr/bin/$tool" "/opt/local/bin/$tool"; fi
    if [ -f "/opt/local/bin/$tool" ]; then ln -sf "/opt/local/bin/$tool" "/usr/local/bin/$tool"; fi
  done
  ln -sf /usr/local/bin/node /opt/local/bin/node
  # the platform's digest(1) (test/illumos-shims/digest), over the sha256sum moved aside above
  sed "s#/usr/bin/sha256sum#$GNU_ONLY/sha256sum#" "$ROOT/test/illumos-shims/digest" >/usr/bin/digest
  chmod 755 /usr/bin/digest
  if ! mountpoint -q /tmp; then mount -t tmpfs -o mode=1777,size=64m zc-tmp /tmp; fi
  if ! mountpoint -q /root; then ramdisk_root; fi
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
  for tool in vmadm imgadm zonecfg zlogin; do
    # one CommonJS file each (npm run bundle-sim): the ESM loader's module resolution costs seconds per call in the emulated guest
    printf '#!/bin/sh\nexec /usr/local/bin/node %s/build/test/sim/%s.cjs "$@"\n' "$ROOT" "$tool" >"/usr/sbin/$tool"
    chmod 755 "/usr/sbin/$tool"
  done
}

case "$mode" in
  setup) smartos_env; pools; backup_sshd; backup_user; simulators ;;
  reset) pools ;;
  reboot) ramdisk_root; exit 0 ;;
  root-ssh) root_ssh; exit 0 ;;
  *) echo "usage: hosts-setup.sh [setup|reset|reboot|root-ssh]" >&2; exit 2 ;;
esac
echo "hosts ready: zones ($(zpool list -H -o size zones)), backup ($(zpool list -H -o size backup)) via zcbackup@127.0.0.2 (login shell $(awk -F: '$1 == "zcbackup" {print $7}' /etc/passwd))"
