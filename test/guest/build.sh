#!/bin/bash
# Builds the real-OpenZFS test guest from Debian packages only: a Debian 12 kernel and a slim
# root file system that is also the initramfs (no root disk, no boot loader), booted by QEMU
# under TCG. The result is cached under ~/.cache/zonecopy/guest-<key>, where <key> hashes every
# build input (this script, the guest's /init, the ZFS variant), so a warm start is boot only.
#
#   bash test/guest/build.sh            # prints the output directory on the last line
#   ZC_ZFS=backports bash ...           # OpenZFS 2.3 from bookworm-backports instead of 2.1.11
#   ZC_GUEST_CLEAN=1 bash ...           # rebuild the chroot from scratch
#
# Needs root (debootstrap, chroot, mknod). The host's apt configuration is only read: its archive
# URI is reused for the chroot, whose own sources add `contrib` (zfs-dkms lives there).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${ZC_CACHE:-$HOME/.cache/zonecopy}
VARIANT=${ZC_ZFS:-stable}
GUEST_PKGS="linux-image-amd64 linux-headers-amd64 kmod udev iproute2 procps openssh-server openssh-client
  mbuffer zstd pigz gzip util-linux"
# Login shells the backup host's user gets in the tests (hosts-setup.sh): csh as on FreeBSD <= 13.
# Installed into a current chroot on their own, so adding one does not rebuild zfs-dkms.
GUEST_SHELLS="csh"
KEEP_MODULES="zfs virtio_pci virtio_blk virtio_net virtio_console virtio_rng 9p 9pnet_virtio veth"

KEY=$(cat "$0" "$HERE/init.sh" <(echo "$VARIANT") | sha256sum | cut -c1-12)
OUT=$CACHE/guest-$KEY
ROOT=$CACHE/chroot-$VARIANT
SLIM=$CACHE/slim-$VARIANT
if [ -f "$OUT/done" ]; then echo "$OUT"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "build.sh must run as root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9   # one build at a time; a waiting caller then finds the finished image
if [ -f "$OUT/done" ]; then echo "$OUT"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
log() { echo "=== $(date +%T) $*" >&2; }
SOURCES=/etc/apt/sources.list.d/debian.sources
MIRROR=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$SOURCES")
SECURITY=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' "$SOURCES")
[ -n "$MIRROR" ] || { echo "no archive URI found in $SOURCES" >&2; exit 1; }
mkdir -p "$CACHE"

unmount_chroot() {
  local d
  for d in dev/pts dev sys proc; do
    if mountpoint -q "$ROOT/$d" 2>/dev/null; then umount -l "$ROOT/$d"; fi
  done
}
trap unmount_chroot EXIT

host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v depmod >/dev/null || missing+=(kmod)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  if [ ${#missing[@]} -gt 0 ]; then
    log "host packages: ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

chroot_packages() {
  local stamp="$ROOT/.zonecopy-packages"
  local want; want=$(echo "$VARIANT $GUEST_PKGS" | sha256sum | cut -c1-12)
  if [ "${ZC_GUEST_CLEAN:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "chroot $ROOT is current"; return
  fi
  unmount_chroot; rm -rf "$ROOT"
  log "debootstrap bookworm (minbase)"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -f "$ROOT/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates bookworm-backports\n' "$MIRROR"
    printf 'Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$SECURITY" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\n' "$SECURITY"
      printf 'Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$ROOT/etc/apt/sources.list.d/debian.sources"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"   # no daemon starts in the chroot
  chmod +x "$ROOT/usr/sbin/policy-rc.d"
  local d
  for d in proc sys dev dev/pts; do mountpoint -q "$ROOT/$d" || mount --bind "/$d" "$ROOT/$d"; done
  chroot "$ROOT" apt-get update -qq
  # Kernel and headers first: zfs-dkms then builds for the chroot's kernel, not the host's.
  log "kernel, headers, base tools"
  # shellcheck disable=SC2086
  chroot "$ROOT" apt-get install -y -q --no-install-recommends $GUEST_PKGS >"$CACHE/chroot-base.log" 2>&1 \
    || { tail -30 "$CACHE/chroot-base.log" >&2; exit 1; }
  local target=(); [ "$VARIANT" = backports ] && target=(-t bookworm-backports)
  log "zfs-dkms (compiles the module) and zfsutils-linux"
  chroot "$ROOT" apt-get install -y -q --no-install-recommends "${target[@]}" zfs-dkms zfsutils-linux \
    >"$CACHE/chroot-zfs.log" 2>&1 || { tail -40 "$CACHE/chroot-zfs.log" >&2; exit 1; }
  local kv; kv=$(ls "$ROOT/lib/modules" | sort -V | tail -1)
  ls "$ROOT/lib/modules/$kv"/updates/dkms/zfs.ko* >/dev/null 2>&1 || chroot "$ROOT" dkms autoinstall -k "$kv"
  unmount_chroot
  echo "$want" >"$stamp"
}

chroot_shells() {
  local missing=() p
  for p in $GUEST_SHELLS; do
    chroot "$ROOT" dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "login shells: ${missing[*]}"
  local d
  for d in proc sys dev dev/pts; do mountpoint -q "$ROOT/$d" || mount --bind "/$d" "$ROOT/$d"; done
  chroot "$ROOT" apt-get update -qq
  chroot "$ROOT" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$CACHE/chroot-base.log" 2>&1 \
    || { tail -30 "$CACHE/chroot-base.log" >&2; exit 1; }
  unmount_chroot
}

slim_tree() {
  log "slim root file system"
  local kv; kv=$(ls "$ROOT/lib/modules" | sort -V | tail -1)
  rm -rf "$SLIM"; mkdir -p "$SLIM"
  # Files of build-only packages are left out one by one, from dpkg's own lists (usr-merge aware).
  local build_only="gcc-12 cpp-12 binutils binutils-common binutils-x86-64-linux-gnu libbinutils
      libctf0 libctf-nobfd0 libgprofng0 libasan8 libtsan2 liblsan0 libubsan1 libitm1 libquadmath0
      libcc1-0 libgcc-12-dev libisl23 libmpc3 libmpfr6 libc6-dev libc-dev-bin linux-libc-dev
      libcrypt-dev libnsl-dev libtirpc-dev rpcsvc-proto linux-kbuild-6.1 linux-compiler-gcc-12-x86
      dkms zfs-dkms make patch dpkg-dev libdpkg-perl perl perl-modules-5.36 libperl5.36
      python3 python3-minimal python3.11 python3.11-minimal libpython3.11-minimal
      libpython3.11-stdlib libpython3-stdlib python3-distutils python3-lib2to3
      initramfs-tools initramfs-tools-core klibc-utils libklibc file libmagic1 libmagic-mgc"
  local p
  for p in $build_only $(chroot "$ROOT" dpkg-query -W -f '${Package}\n' 'linux-headers-*' 'linux-image-*' 2>/dev/null); do
    chroot "$ROOT" dpkg -L "$p" 2>/dev/null || true
  done | while read -r f; do
    if [ ! -d "$ROOT$f" ] && { [ -f "$ROOT$f" ] || [ -L "$ROOT$f" ]; }; then echo "$f"; fi
  done | sed -E 's#^/(lib|lib64|bin|sbin)/#/usr/\1/#; s#^#.#' | sort -u >"$CACHE/slim-exclude.txt"
  tar -C "$ROOT" --numeric-owner \
    --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' --exclude=./boot \
    --exclude=./usr/src --exclude=./usr/lib/gcc --exclude=./usr/libexec/gcc --exclude=./usr/include \
    --exclude='./usr/lib/linux-kbuild-*' --exclude=./var/lib/dkms \
    --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' \
    --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/info \
    --exclude=./usr/share/locale --exclude=./usr/share/perl --exclude=./usr/lib/x86_64-linux-gnu/perl \
    --exclude=./usr/share/perl5 --exclude=./usr/lib/python3.11 \
    --exclude=./lib/modules --exclude=./usr/lib/modules --exclude=./usr/lib/udev/hwdb.bin \
    --exclude='./usr/lib/x86_64-linux-gnu/*.a' --exclude=./.zonecopy-packages \
    -X "$CACHE/slim-exclude.txt" -cf - . | tar -C "$SLIM" -xf -
  if chroot "$SLIM" /usr/bin/ldd /usr/sbin/zfs /usr/sbin/zpool /usr/sbin/sshd /usr/bin/ssh /usr/bin/mbuffer \
      /usr/bin/udevadm /lib/systemd/systemd-udevd /usr/bin/bash /usr/bin/bsd-csh /usr/sbin/ip 2>&1 | grep 'not found'; then
    echo "a guest binary lost a library in the slim tree" >&2; exit 1
  fi
  local mods
  mods=$(chroot "$ROOT" sh -c "for m in $KEEP_MODULES; do modprobe -S $kv --show-depends \$m; done" |
    awk '$1 == "insmod" {print $2}' | sort -u)
  for f in $mods; do install -D -m 644 "$ROOT$f" "$SLIM$f"; done
  cp "$ROOT/lib/modules/$kv"/modules.{order,builtin,builtin.modinfo} "$SLIM/lib/modules/$kv/"
  depmod -b "$SLIM" "$kv"
  mknod -m 600 "$SLIM/dev/console" c 5 1
  mknod -m 666 "$SLIM/dev/null" c 1 3
  install -m 755 "$HERE/init.sh" "$SLIM/init"
  echo zvm >"$SLIM/etc/hostname"
  chroot "$SLIM" zgenhostid -f 2>/dev/null || true
  # Control access from the test host: one key pair per image, root by key only.
  mkdir -p "$OUT"
  ssh-keygen -q -t ed25519 -N '' -C zonecopy-guest-control -f "$OUT/id_ed25519"
  rm -f "$SLIM"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C zonecopy-guest -f "$SLIM/etc/ssh/ssh_host_ed25519_key"
  cp "$SLIM/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/host_key.pub"
  install -d -m 700 "$SLIM/root/.ssh"
  install -m 600 "$OUT/id_ed25519.pub" "$SLIM/root/.ssh/authorized_keys"
  # Root's shell must not read rc files that print or slow down every remote command.
  rm -f "$SLIM/root/.bashrc" "$SLIM/root/.profile"
  cat >"$SLIM/etc/ssh/sshd_config.d/zonecopy.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxSessions 128
MaxStartups 128
EOF
  cp "$ROOT/boot/vmlinuz-$kv" "$OUT/vmlinuz"
  echo "$kv" >"$OUT/kernel-version"
  chroot "$ROOT" dpkg-query -W -f '${Version}\n' zfsutils-linux >"$OUT/zfs-version"
}

pack() {
  log "pack initramfs"
  (cd "$SLIM" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | zstd -q -T0 -3 >"$OUT/initrd.img"
  rm -rf "$SLIM"
  touch "$OUT/done"
  log "built $OUT: zfs $(cat "$OUT/zfs-version"), kernel $(cat "$OUT/kernel-version"), $(du -sh "$OUT" | cut -f1)"
}

start=$(date +%s)
rm -rf "$OUT"
host_tools
chroot_packages
chroot_shells
slim_tree
pack
log "guest build took $(($(date +%s) - start)) s"
echo "$OUT"
