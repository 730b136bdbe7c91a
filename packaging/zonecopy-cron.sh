#!/bin/sh
# Puts the zonecopy lines of a cron file into root's crontab, replacing earlier zonecopy lines and
# keeping everything else. Run by the SMF service site/zonecopy-cron at every boot (the SmartOS
# global zone's crontab lives on the ramdisk and is reset at boot) and by install.sh.
#   zonecopy-cron.sh /opt/zonecopy/cron/root.cron
# Exits non-zero when root's crontab does not hold those lines afterwards.
set -u
lines=${1:?usage: zonecopy-cron.sh CRON-FILE}
table=$(mktemp "${TMPDIR:-/tmp}/zonecopy-cron.XXXXXX") || exit 1
wanted=$(mktemp "${TMPDIR:-/tmp}/zonecopy-cron.XXXXXX") || { rm -f "$table"; exit 1; }
trap 'rm -f "$table" "$wanted"' EXIT
if [ -f "$lines" ]; then grep ' # zonecopy$' "$lines" >"$wanted"; fi
crontab -l 2>/dev/null | grep -v ' # zonecopy$' >"$table"
cat "$wanted" >>"$table"
if ! crontab "$table"; then
  echo "zonecopy-cron.sh: crontab refused the new table, so root's crontab is unchanged" >&2
  exit 1
fi
# Older illumos crontab exits 0 even when it refused a line: check what the table holds now.
if ! crontab -l 2>/dev/null | grep ' # zonecopy$' | cmp -s - "$wanted"; then
  echo "zonecopy-cron.sh: after crontab, root's crontab does not hold the zonecopy lines of $lines" >&2
  exit 1
fi
exit 0
