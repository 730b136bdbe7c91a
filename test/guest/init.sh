#!/bin/sh
# /init of the zonecopy test guest (PID 1, no systemd). The root file system is the initramfs.
# Mounts the pseudo file systems, loads virtio drivers and ZFS, runs udevd (for /dev/zvol links),
# mounts the project checkout shared over 9p at /mnt/host, brings up QEMU's user network and the
# control sshd, prints ZVM-READY on the serial console, and then only reaps orphans.
# Hosts, pools and simulators are set up afterwards by test/guest/hosts-setup.sh over ssh, so that
# changing them never needs an image rebuild.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/tmp /mnt/host
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=755,size=256M tmpfs /run
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname zvm

modprobe -a virtio_pci virtio_blk virtio_net virtio_console virtio_rng 2>/dev/null
/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --action=add --type=all
udevadm settle --timeout=60
modprobe zfs || echo "ZVM: modprobe zfs FAILED"

modprobe -a 9pnet_virtio 9p 2>/dev/null
if cat /sys/bus/virtio/devices/*/mount_tag 2>/dev/null | tr -d '\0' | grep -qx host; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 host /mnt/host
fi

ip link set lo up
NIC=$(ls /sys/class/net | grep -v '^lo$' | head -1)
[ -n "$NIC" ] && ip link set "$NIC" up && ip addr add 10.0.2.15/24 dev "$NIC"

mkdir -p /run/sshd && chmod 755 /run/sshd
/usr/sbin/sshd -o ListenAddress=10.0.2.15 -E /run/sshd-control.log

echo "ZVM-READY uptime=$(cut -d' ' -f1 /proc/uptime) zfs=$(cat /sys/module/zfs/version 2>/dev/null)"
while :; do sleep 10; done
