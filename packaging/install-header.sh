#!/bin/sh
# zonecopy @VERSION@ installer: a shell header followed by a tar.gz payload (built by
# build_distribution.sh). Nothing is written before the payload's sha256 has been verified.
#
#   sh install.sh [--prefix /opt/zonecopy] [--preserve-config] [--cron 'SPEC' --cron-args 'ARGS']...
#   sh install.sh --uninstall [--prefix /opt/zonecopy] [--purge]
#
# --preserve-config is accepted for smartcopy users; an existing configuration.json is never
# overwritten anyway. --cron may be given several times, each with its --cron-args.
PAYLOAD_SHA256=@PAYLOAD_SHA256@
PAYLOAD_SIZE=@PAYLOAD_SIZE@
VERSION='@VERSION@'

prefix=/opt/zonecopy
uninstall=0
purge=0
cron_lines=''
pending_spec=''

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

add_cron() {  # $1 spec, $2 args
  cron_lines="$cron_lines$1 $prefix/bin/backup $2 # zonecopy
"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --preserve-config) shift ;;
    --cron) [ $# -ge 2 ] || usage; [ -z "$pending_spec" ] || die "--cron '$pending_spec' has no --cron-args"; pending_spec=$2; shift 2 ;;
    --cron-args) [ $# -ge 2 ] && [ -n "$pending_spec" ] || usage; add_cron "$pending_spec" "$2"; pending_spec=''; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage ;;
    *) say "unknown option: $1" >&2; usage ;;
  esac
done
[ -z "$pending_spec" ] || die "--cron '$pending_spec' needs --cron-args 'VM-UUID [options]'"
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path (got '$prefix')" ;; esac

is_smartos() { [ "$(uname -s)" = SunOS ] && [ -x /usr/sbin/vmadm ]; }

sha256_of_payload() {
  if command -v sha256sum >/dev/null 2>&1; then tail -c "$PAYLOAD_SIZE" "$0" | sha256sum | cut -d' ' -f1
  elif command -v digest >/dev/null 2>&1; then tail -c "$PAYLOAD_SIZE" "$0" | digest -a sha256
  elif command -v openssl >/dev/null 2>&1; then tail -c "$PAYLOAD_SIZE" "$0" | openssl dgst -sha256 | sed 's/.*= *//'
  else die "no sha256 tool (sha256sum, digest or openssl) to verify the payload"
  fi
}

# Puts this prefix's cron lines into root's crontab (replacing older zonecopy lines).
apply_cron() {
  if is_smartos; then
    mkdir -p /opt/custom/smf
    cp "$prefix/smf/zonecopy-cron.xml" /opt/custom/smf/zonecopy-cron.xml
    sed -i.bak "s#@PREFIX@#$prefix#g" /opt/custom/smf/zonecopy-cron.xml 2>/dev/null || {
      sed "s#@PREFIX@#$prefix#g" "$prefix/smf/zonecopy-cron.xml" >/opt/custom/smf/zonecopy-cron.xml; }
    rm -f /opt/custom/smf/zonecopy-cron.xml.bak
    svccfg import /opt/custom/smf/zonecopy-cron.xml && svcadm restart svc:/site/zonecopy-cron:default 2>/dev/null
    "$prefix/smf/zonecopy-cron.sh" "$prefix/cron/root.cron"
    say "cron: root's crontab now has the lines in $prefix/cron/root.cron; the SMF service site/zonecopy-cron (/opt/custom/smf) puts them back at every boot"
  elif command -v crontab >/dev/null 2>&1; then
    "$prefix/smf/zonecopy-cron.sh" "$prefix/cron/root.cron"
    say "cron: not SmartOS, so installed the lines of $prefix/cron/root.cron with crontab directly (no boot service needed)"
  else
    say "cron: no crontab command here; add the lines of $prefix/cron/root.cron to your scheduler yourself"
  fi
}

if [ "$uninstall" = 1 ]; then
  [ -d "$prefix" ] || die "nothing installed in $prefix"
  if [ -f "$prefix/VERSION" ] || [ -f "$prefix/dist/zonecopy.mjs" ]; then :; else die "$prefix does not look like a zonecopy installation"; fi
  if is_smartos && [ -f /opt/custom/smf/zonecopy-cron.xml ]; then
    svcadm disable svc:/site/zonecopy-cron:default 2>/dev/null
    svccfg delete svc:/site/zonecopy-cron 2>/dev/null
    rm -f /opt/custom/smf/zonecopy-cron.xml
  fi
  if [ -f "$prefix/cron/root.cron" ] && command -v crontab >/dev/null 2>&1; then
    : >"$prefix/cron/root.cron"
    "$prefix/smf/zonecopy-cron.sh" "$prefix/cron/root.cron" 2>/dev/null
  fi
  rm -rf "$prefix/bin" "$prefix/dist" "$prefix/node" "$prefix/smf" "$prefix/cron" "$prefix/VERSION" "$prefix/README" "$prefix/configuration.json.example"
  if [ "$purge" = 1 ]; then rm -rf "$prefix"; say "removed $prefix entirely (configuration and logs too)"
  else say "removed zonecopy from $prefix; kept $(ls "$prefix" 2>/dev/null | tr '\n' ' ')(use --purge to remove those too)"; fi
  exit 0
fi

say "zonecopy $VERSION installer"
actual=$(sha256_of_payload)
[ "$actual" = "$PAYLOAD_SHA256" ] || die "install.sh is damaged: payload sha256 is $actual, expected $PAYLOAD_SHA256. Nothing was installed; download or copy install.sh again."

work=$(mktemp -d "${TMPDIR:-/tmp}/zonecopy-install.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$work"' EXIT INT TERM
tail -c "$PAYLOAD_SIZE" "$0" | gzip -dc | (cd "$work" && tar -xf -) || die "cannot unpack the payload"
node=$(ZONECOPY_PRINT_NODE=1 sh "$work/zonecopy/bin/zonecopy") || die "zonecopy needs Node.js >= 20 and found none (looked in the payload, /opt/tools/bin, /opt/local/bin and PATH). On SmartOS: run 'pkgsrc-setup', then 'pkgin -y install nodejs', and run this installer again. Nothing was installed."
say "node: $node ($("$node" --version))"

mkdir -p "$prefix" || die "cannot create $prefix"
upgrade=0
[ -f "$prefix/VERSION" ] && upgrade=1 && say "upgrading $(cat "$prefix/VERSION") in $prefix"
rm -rf "$prefix/bin" "$prefix/dist" "$prefix/node" "$prefix/smf"
for item in bin dist smf node VERSION README configuration.json.example; do
  [ -e "$work/zonecopy/$item" ] && cp -R "$work/zonecopy/$item" "$prefix/"
done
mkdir -p "$prefix/cron" "$prefix/log"
[ -f "$prefix/cron/root.cron" ] || : >"$prefix/cron/root.cron"
if [ -f "$prefix/configuration.json" ]; then
  config_note="kept your $prefix/configuration.json (the new example is $prefix/configuration.json.example)"
else
  config_note="no configuration yet: cp $prefix/configuration.json.example $prefix/configuration.json and edit it"
fi
if [ -n "$cron_lines" ]; then
  grep -v ' # zonecopy$' "$prefix/cron/root.cron" >"$work/cron" 2>/dev/null
  printf '%s' "$cron_lines" >>"$work/cron"
  cp "$work/cron" "$prefix/cron/root.cron"
  apply_cron
fi

say "installed zonecopy $VERSION into $prefix$([ "$upgrade" = 1 ] && echo ' (upgrade)')"
say "$config_note"
say "next: test it with  $prefix/bin/backup --dry-run <vm-uuid>"
[ -n "$cron_lines" ] || say "      then schedule it, e.g.  sh install.sh --cron '0 2 * * *' --cron-args '<vm-uuid> --groupName daily --localSnapLimit 3 --remoteSnapLimit 14'"
exit 0
