#!/bin/sh
# zonecopy @VERSION@ installer: a shell header followed by a tar.gz payload (built by
# build_distribution.sh). Nothing is written before the payload's sha256, the schedules and the
# node to use have been checked.
#
#   sh install.sh [--prefix /opt/zonecopy] [--preserve-config] [--cron 'SPEC' --cron-args 'ARGS']...
#   sh install.sh --uninstall [--prefix /opt/zonecopy] [--purge]
#
# --preserve-config is accepted for smartcopy users; an existing configuration.json is never
# overwritten anyway. --cron may be given several times, each with its --cron-args. SPEC is five
# fields as illumos cron takes them: numbers, lists (1,15) and ranges (1-5) or *; no */N, no @daily.
PAYLOAD_SHA256=@PAYLOAD_SHA256@
HEADER_BLOCKS=@HEADER_BLOCKS@
VERSION='@VERSION@'
SMF_DIR=/opt/custom/smf
SMF_SERVICE=svc:/site/zonecopy-cron
SERVE_SERVICE=svc:/site/zonecopy

prefix=/opt/zonecopy
uninstall=0
purge=0
cron_pairs=''
pending_spec=''

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# Numbers for the names illumos cron does not take, in a field's text (for the error's suggestion).
names_to_numbers() {  # $1 field name, $2 value
  case "$1" in
    month) printf '%s\n' "$2" | sed -e 's/[Jj][Aa][Nn]/1/g' -e 's/[Ff][Ee][Bb]/2/g' -e 's/[Mm][Aa][Rr]/3/g' \
      -e 's/[Aa][Pp][Rr]/4/g' -e 's/[Mm][Aa][Yy]/5/g' -e 's/[Jj][Uu][Nn]/6/g' -e 's/[Jj][Uu][Ll]/7/g' \
      -e 's/[Aa][Uu][Gg]/8/g' -e 's/[Ss][Ee][Pp]/9/g' -e 's/[Oo][Cc][Tt]/10/g' -e 's/[Nn][Oo][Vv]/11/g' -e 's/[Dd][Ee][Cc]/12/g' ;;
    day-of-week) printf '%s\n' "$2" | sed -e 's/[Ss][Uu][Nn]/0/g' -e 's/[Mm][Oo][Nn]/1/g' -e 's/[Tt][Uu][Ee]/2/g' \
      -e 's/[Ww][Ee][Dd]/3/g' -e 's/[Tt][Hh][Uu]/4/g' -e 's/[Ff][Rr][Ii]/5/g' -e 's/[Ss][Aa][Tt]/6/g' ;;
    *) printf '%s\n' "$2" ;;
  esac
}

# A field's number without leading zeros, or dies when it is not one within the field's bounds.
cron_number() {  # $1 spec, $2 field name, $3 field value, $4 the number, $5 lower, $6 upper, $7 note
  number=${4#"${4%%[!0]*}"}
  case "$4" in ''|*[!0-9]*) die "--cron '$1': $2 field '$3' is not a number, list (1,15) or range (1-5), the only forms illumos cron takes besides *" ;; esac
  [ -n "$number" ] || number=0
  if [ "${#number}" -gt 2 ] || [ "$number" -lt "$5" ] || [ "$number" -gt "$6" ]; then
    die "--cron '$1': $2 field '$3' is out of range; illumos cron takes $5-$6$7"
  fi
}

# Checks one field against illumos cron's grammar (crontab.c next_field: * or a comma list of N and
# N-M); for what it refuses, the error says what to write instead.
check_cron_field() {  # $1 spec, $2 field name, $3 value, $4 lower, $5 upper
  note=''
  [ "$2" = day-of-week ] && note=' (0 is Sunday)'
  case "$3" in
    '*') return 0 ;;
    */*)
      range=${3%/*}
      step=${3##*/}
      case "$range" in
        '*') first=$4; last=$5 ;;
        *-*) first=${range%-*}; last=${range#*-} ;;
        *) first=$range; last=$5 ;;
      esac
      cron_number "$1" "$2" "$3" "$first" "$4" "$5" "$note"; first=$number
      cron_number "$1" "$2" "$3" "$last" "$4" "$5" "$note"; last=$number
      step=${step#"${step%%[!0]*}"}
      case "$step" in ''|*[!0-9]*) die "--cron '$1': $2 field '$3' is a step (*/N) with no N above 0; illumos cron takes no steps: write a list such as 0,15,30,45" ;; esac
      list=$first
      value=$((first + step))
      while [ "$value" -le "$last" ]; do list="$list,$value"; value=$((value + step)); done
      die "--cron '$1': $2 field '$3' is a step (*/N), which illumos cron does not take; write $list instead" ;;
    *[A-Za-z]*)
      numbers=$(names_to_numbers "$2" "$3")
      case "$numbers" in
        *[A-Za-z]*) die "--cron '$1': $2 field '$3' has letters; illumos cron takes numbers only$note" ;;
        *) die "--cron '$1': $2 field '$3' is a name, which illumos cron does not take; write $numbers instead$note" ;;
      esac ;;
  esac
  rest=$3
  while :; do
    item=${rest%%,*}
    case "$item" in
      *-*-*) die "--cron '$1': $2 field '$3' is not a number, list (1,15) or range (1-5), the only forms illumos cron takes besides *" ;;
      *-*) cron_number "$1" "$2" "$3" "${item%-*}" "$4" "$5" "$note"; cron_number "$1" "$2" "$3" "${item#*-}" "$4" "$5" "$note" ;;
      *) cron_number "$1" "$2" "$3" "$item" "$4" "$5" "$note" ;;
    esac
    case "$rest" in *,*) rest=${rest#*,} ;; *) break ;; esac
  done
}

# Sets cron_spec to SPEC with single spaces, or dies naming what illumos cron would refuse.
check_cron_spec() {  # $1 spec
  case "$1" in
    @reboot) die "--cron '$1': illumos cron has no @reboot; give a time, such as '0 2 * * *'" ;;
    @yearly|@annually) die "--cron '$1': illumos cron does not take '$1'; write '0 0 1 1 *' instead" ;;
    @monthly) die "--cron '$1': illumos cron does not take '$1'; write '0 0 1 * *' instead" ;;
    @weekly) die "--cron '$1': illumos cron does not take '$1'; write '0 0 * * 0' instead" ;;
    @daily|@midnight) die "--cron '$1': illumos cron does not take '$1'; write '0 0 * * *' instead" ;;
    @hourly) die "--cron '$1': illumos cron does not take '$1'; write '0 * * * *' instead" ;;
    @*) die "--cron '$1': illumos cron does not take '$1'; write five fields (minute hour day-of-month month day-of-week), such as '0 2 * * *'" ;;
  esac
  set -f
  # shellcheck disable=SC2086 # split into fields on purpose (globbing is off)
  set -- "$1" $1
  set +f
  [ $# -eq 6 ] || die "--cron '$1': a schedule has 5 fields (minute hour day-of-month month day-of-week), got $(($# - 1))"
  check_cron_field "$1" minute "$2" 0 59
  check_cron_field "$1" hour "$3" 0 23
  check_cron_field "$1" day-of-month "$4" 1 31
  check_cron_field "$1" month "$5" 1 12
  check_cron_field "$1" day-of-week "$6" 0 6
  cron_spec="$2 $3 $4 $5 $6"
}

check_cron_args() {  # $1 args
  case "$1" in
    *'
'*) die "--cron-args has a line break; give the arguments on one line" ;;
    *%*) die "--cron-args '$1' has a %, which cron reads as a line break; leave it out" ;;
    '') die "--cron-args is empty; give the VM's uuid and options" ;;
  esac
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --preserve-config) shift ;;
    --cron)
      [ $# -ge 2 ] || usage
      [ -z "$pending_spec" ] || die "--cron '$pending_spec' has no --cron-args"
      check_cron_spec "$2"
      pending_spec=$cron_spec
      shift 2 ;;
    --cron-args)
      if [ $# -lt 2 ] || [ -z "$pending_spec" ]; then usage; fi
      check_cron_args "$2"
      cron_pairs="$cron_pairs$pending_spec
$2
"
      pending_spec=''
      shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage ;;
    *) say "unknown option: $1" >&2; usage ;;
  esac
done
[ -z "$pending_spec" ] || die "--cron '$pending_spec' needs --cron-args 'VM-UUID [options]'"
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path (got '$prefix')" ;; esac
case "$prefix" in
  *[!A-Za-z0-9/._+-]*) die "--prefix '$prefix' may hold only letters, digits and / . _ + - (it goes into cron lines and the SMF manifest)" ;;
esac

# The cron jobs' output goes to the log: the report is in the log file and the email already, and
# root's mail on a global zone is read by no one.
cron_lines=''
while IFS= read -r spec && IFS= read -r args; do
  cron_lines="$cron_lines$spec $prefix/bin/backup $args >>$prefix/log/cron.log 2>&1 # zonecopy
"
done <<EOF
$cron_pairs
EOF

is_smartos() { [ "$(uname -s)" = SunOS ] && [ -x /usr/sbin/vmadm ]; }

# The payload: everything after the header's blocks (dd, because older illumos tail reads
# `tail -c N FILE` as the last 10 bytes of the files N and FILE).
payload() { dd if="$0" bs=512 skip="$HEADER_BLOCKS" 2>/dev/null; }

sha256_of_payload() {
  if command -v digest >/dev/null 2>&1; then payload | digest -a sha256
  elif command -v sha256sum >/dev/null 2>&1; then payload | sha256sum | cut -d' ' -f1
  elif command -v openssl >/dev/null 2>&1; then payload | openssl dgst -sha256 | sed 's/.*= *//'
  else die "no sha256 tool (digest, sha256sum or openssl) to verify the payload"
  fi
}

node_major() {  # $1 output of node --version
  major=${1#v}
  major=${major%%.*}
  case "$major" in ''|*[!0-9]*) echo 0 ;; *) echo "$major" ;; esac
}

# Dies unless $1 runs and is a node >= 20; $2 names it in the error.
check_node() {  # $1 path, $2 what it is
  node_version=$("$1" --version 2>&1) || die "$2 does not run here: $node_version
A node zonecopy uses must be self-contained: built for this platform and not linked against pkgsrc's
libraries under /opt/local/lib or /opt/tools/lib (a pkgsrc node copied alone does not start). Nothing was installed."
  [ "$(node_major "$node_version")" -ge 20 ] || die "$2 is $node_version; zonecopy needs Node.js >= 20. Nothing was installed."
}

# Puts the lines of $1 into root's crontab (replacing older zonecopy lines), then keeps $1 as this
# prefix's cron file; on SmartOS the SMF service puts them back at every boot.
apply_cron() {  # $1 the new cron file
  "$prefix/smf/zonecopy-cron.sh" "$1" || die "zonecopy $VERSION is installed in $prefix, but crontab refused its lines, so they are not in root's crontab (see above); $prefix/cron/root.cron is unchanged"
  cp "$1" "$prefix/cron/root.cron" || die "cannot write $prefix/cron/root.cron"
  if is_smartos; then
    mkdir -p "$SMF_DIR" || die "cannot create $SMF_DIR"
    sed "s#@PREFIX@#$prefix#g" "$prefix/smf/zonecopy-cron.xml" >"$SMF_DIR/zonecopy-cron.xml" || die "cannot write $SMF_DIR/zonecopy-cron.xml"
    if svccfg import "$SMF_DIR/zonecopy-cron.xml"; then
      svcadm restart "$SMF_SERVICE:default" 2>/dev/null
      say "cron: root's crontab now has the lines in $prefix/cron/root.cron; the SMF service site/zonecopy-cron ($SMF_DIR) puts them back at every boot"
    else
      say "install.sh: warning: svccfg import $SMF_DIR/zonecopy-cron.xml failed: root's crontab has the lines now, but nothing puts them back after a reboot until that import works" >&2
    fi
  else
    say "cron: not SmartOS, so installed the lines of $prefix/cron/root.cron with crontab directly (no boot service needed)"
  fi
}

# `zonecopy serve` as an SMF service, imported disabled (an upgrade keeps it enabled or disabled as
# it was, and restarts it when it runs): `svcadm enable zonecopy` starts it. Loaded from $SMF_DIR at boot.
serve_note=''
install_serve_service() {
  is_smartos || return 0
  mkdir -p "$SMF_DIR" || die "cannot create $SMF_DIR"
  sed "s#@PREFIX@#$prefix#g" "$prefix/smf/zonecopy-serve.xml" >"$SMF_DIR/zonecopy-serve.xml" || die "cannot write $SMF_DIR/zonecopy-serve.xml"
  if svccfg import "$SMF_DIR/zonecopy-serve.xml"; then
    if [ "$(svcs -H -o state "$SERVE_SERVICE:default" 2>/dev/null)" = online ]; then
      svcadm restart "$SERVE_SERVICE:default" 2>/dev/null
      serve_note="service: site/zonecopy (zonecopy serve) restarted with this version"
    else
      serve_note="service: site/zonecopy serves the \"policies\" of $prefix/configuration.json once you run  svcadm enable zonecopy  (log: svcs -L zonecopy); cron lines keep working without it"
    fi
  else
    say "install.sh: warning: svccfg import $SMF_DIR/zonecopy-serve.xml failed: the service site/zonecopy (zonecopy serve) is not available" >&2
  fi
}

if [ "$uninstall" = 1 ]; then
  [ -d "$prefix" ] || die "nothing installed in $prefix"
  if [ -f "$prefix/VERSION" ] || [ -f "$prefix/dist/zonecopy.mjs" ]; then :; else die "$prefix does not look like a zonecopy installation"; fi
  status=0
  if is_smartos && [ -f "$SMF_DIR/zonecopy-cron.xml" ]; then
    # -s: wait until it is disabled, so that the delete does not meet a running instance
    svcadm disable -s "$SMF_SERVICE:default" 2>/dev/null
    svccfg delete "$SMF_SERVICE" 2>/dev/null
    rm -f "$SMF_DIR/zonecopy-cron.xml"
  fi
  if is_smartos && [ -f "$SMF_DIR/zonecopy-serve.xml" ]; then
    # -s: the running cycles end first (their receives are resumable)
    svcadm disable -s "$SERVE_SERVICE:default" 2>/dev/null
    svccfg delete "$SERVE_SERVICE" 2>/dev/null
    rm -f "$SMF_DIR/zonecopy-serve.xml"
  fi
  if [ -f "$prefix/cron/root.cron" ] && command -v crontab >/dev/null 2>&1; then
    : >"$prefix/cron/root.cron"
    if ! "$prefix/smf/zonecopy-cron.sh" "$prefix/cron/root.cron"; then
      say "install.sh: root's crontab still has zonecopy lines: remove the lines ending in '# zonecopy' with crontab -e" >&2
      status=1
    fi
  fi
  rm -rf "${prefix:?}/bin" "$prefix/dist" "$prefix/node" "$prefix/smf" "$prefix/cron" "$prefix/VERSION" "$prefix/README" "$prefix/configuration.json.example"
  if [ "$purge" = 1 ]; then
    rm -rf "$prefix"
    say "removed $prefix entirely (configuration and logs too)"
  else
    kept=''
    for item in "$prefix"/*; do [ -e "$item" ] && kept="$kept${item##*/} "; done
    say "removed zonecopy from $prefix; kept $kept(use --purge to remove those too)"
  fi
  exit "$status"
fi

say "zonecopy $VERSION installer"
actual=$(sha256_of_payload)
[ "$actual" = "$PAYLOAD_SHA256" ] || die "install.sh is damaged: payload sha256 is $actual, expected $PAYLOAD_SHA256. Nothing was installed; download or copy install.sh again."

work=$(mktemp -d "${TMPDIR:-/tmp}/zonecopy-install.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$work"' EXIT INT TERM
payload | gzip -dc | (cd "$work" && tar -xf -) || die "cannot unpack the payload"
if [ -e "$work/zonecopy/node/bin/node" ]; then check_node "$work/zonecopy/node/bin/node" "the node shipped in this installer"; fi
if [ -n "${ZONECOPY_NODE:-}" ]; then check_node "$ZONECOPY_NODE" "ZONECOPY_NODE ($ZONECOPY_NODE)"; fi
node=$(ZONECOPY_PRINT_NODE=1 sh "$work/zonecopy/bin/zonecopy") || die "zonecopy needs Node.js >= 20 and found none (looked in the payload, /opt/tools/bin, /opt/local/bin and PATH). On SmartOS: run 'pkgsrc-setup', then 'pkgin -y install nodejs', and run this installer again. Nothing was installed."
say "node: $node ($("$node" --version))"

mkdir -p "$prefix" || die "cannot create $prefix"
upgrade=0
[ -f "$prefix/VERSION" ] && upgrade=1 && say "upgrading $(cat "$prefix/VERSION") in $prefix"
rm -rf "${prefix:?}/bin" "$prefix/dist" "$prefix/node" "$prefix/smf"
for item in bin dist smf node VERSION README configuration.json.example; do
  if [ -e "$work/zonecopy/$item" ]; then cp -R "$work/zonecopy/$item" "$prefix/" || die "cannot copy $item into $prefix"; fi
done
mkdir -p "$prefix/cron" "$prefix/log"
[ -f "$prefix/cron/root.cron" ] || : >"$prefix/cron/root.cron"
if [ -f "$prefix/configuration.json" ]; then
  config_note="kept your $prefix/configuration.json (the new example is $prefix/configuration.json.example)"
else
  config_note="no configuration yet: cp $prefix/configuration.json.example $prefix/configuration.json and edit it"
fi
if [ -n "$cron_lines" ]; then
  if command -v crontab >/dev/null 2>&1; then
    grep -v ' # zonecopy$' "$prefix/cron/root.cron" >"$work/cron"
    printf '%s' "$cron_lines" >>"$work/cron"
    apply_cron "$work/cron"
  else
    printf '%s' "$cron_lines" >"$prefix/cron/root.cron"
    say "cron: no crontab command here; add the lines of $prefix/cron/root.cron to your scheduler yourself"
  fi
fi

install_serve_service

# On SunOS / (so /root/.ssh) is a ramdisk rebuilt at every boot: the backup host's key and ours
# live under the installation, which persists (src/config/platform.ts defaults to the same paths).
key_note=''
if [ "$(uname -s)" = SunOS ]; then
  key="$prefix/etc/ssh/id_ed25519"
  known="$prefix/etc/ssh/known_hosts"
  mkdir -p "$prefix/etc" || die "cannot create $prefix/etc"
  for dir in ssh gnupg aws; do
    [ -d "$prefix/etc/$dir" ] || mkdir -m 700 "$prefix/etc/$dir" || die "cannot create $prefix/etc/$dir"
  done
  if [ -f "$key" ]; then
    key_note="ssh key: $key (kept)"
  elif command -v ssh-keygen >/dev/null 2>&1; then
    ssh-keygen -q -t ed25519 -N '' -C "zonecopy@$(uname -n)" -f "$key" </dev/null || die "ssh-keygen could not create $key"
    # the backup host and port, when a configuration names them, for the exact ssh-keyscan step
    dest='BACKUP-HOST'
    port=22
    if [ -f "$prefix/configuration.json" ]; then
      dest_port=$("$node" -e 'try { const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (/^[A-Za-z0-9.:-]+$/.test(c.backupDestination ?? "")) console.log(c.backupDestination, Number(c.backupDestinationPort ?? 22) || 22); } catch {}' "$prefix/configuration.json")
      [ -n "$dest_port" ] && dest=${dest_port% *} && port=${dest_port#* }
    fi
    scan_port=''
    [ "$port" = 22 ] || scan_port=" -p $port"
    key_note="ssh key: created $key for the backup host (it survives reboots; /root/.ssh does not). Its public key:
$(cat "$key.pub")
  1. append that line to ~/.ssh/authorized_keys of the backup user on the backup host
  2. pin the backup host's key:  ssh-keyscan$scan_port -t ed25519 $dest >> $known
  3. check the pinned fingerprint:  ssh-keygen -lf $known  shows the one the backup host shows for  ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub
     (if it differs, remove that line: someone else answered)"
  else
    key_note="ssh key: no ssh-keygen here; create $key yourself (ssh-keygen -t ed25519 -N '' -f $key)"
  fi
fi

say "installed zonecopy $VERSION into $prefix$([ "$upgrade" = 1 ] && echo ' (upgrade)')"
[ -z "$key_note" ] || say "$key_note"
[ -z "$serve_note" ] || say "$serve_note"
say "$config_note"
say "next: test it with  $prefix/bin/backup --dry-run <vm-uuid>"
[ -n "$cron_lines" ] || say "      then schedule it, e.g.  sh install.sh --cron '0 2 * * *' --cron-args '<vm-uuid> --groupName daily --localSnapLimit 3 --remoteSnapLimit 14'"
exit 0
