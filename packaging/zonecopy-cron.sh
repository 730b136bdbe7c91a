#!/bin/sh
# Puts the zonecopy lines of a cron file into root's crontab, replacing earlier zonecopy lines and
# keeping everything else. Run by the SMF service site/zonecopy-cron at every boot (the SmartOS
# global zone's crontab lives on the ramdisk and is reset at boot) and by install.sh.
#   zonecopy-cron.sh /opt/zonecopy/cron/root.cron
set -u
lines=${1:?usage: zonecopy-cron.sh CRON-FILE}
tmp=$(mktemp "${TMPDIR:-/tmp}/zonecopy-cron.XXXXXX") || exit 1
crontab -l 2>/dev/null | grep -v ' # zonecopy$' >"$tmp"
[ -f "$lines" ] && grep ' # zonecopy$' "$lines" >>"$tmp"
crontab "$tmp"
status=$?
rm -f "$tmp"
exit $status
