#!/bin/bash
# Builds dist/install.sh: one self-extracting shell archive that installs zonecopy into /opt on a
# SmartOS host (or any Unix with Node >= 20). The payload (bundled CLI, launchers, example config,
# SMF manifest and method, README, VERSION, optionally a node binary) is a reproducible tar.gz
# whose sha256 the installer checks before it writes anything.
#
#   ./build_distribution.sh                        # -> dist/install.sh
#   ./build_distribution.sh OUTPUT                 # -> OUTPUT
#   NODE_BINARY=/path/to/illumos/node ./build_distribution.sh   # embeds that node (offline hosts)
#   ZONECOPY_BUILT=1 ./build_distribution.sh ...   # build/ is fresh (npm run build ran): no tsc
#
# The installer's shell part is padded to whole 512-byte blocks, so that it can cut the payload off
# with dd (older illumos tail misreads `tail -c N`).
set -euo pipefail
cd "$(dirname "$0")"
export LC_ALL=C
output=${1:-dist/install.sh}

version=$(node -p 'require("./package.json").version')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
stage=$(mktemp -d "${TMPDIR:-/tmp}/zonecopy-distribution.XXXXXX")
trap 'rm -rf "$stage"' EXIT
payload=$stage/zonecopy

[ -n "${ZONECOPY_BUILT:-}" ] || npx tsc -p tsconfig.json
mkdir -p "$payload/bin" "$payload/dist" "$payload/smf" "$(dirname "$output")"
packaging/bundle.sh "$payload/dist" --define:ZONECOPY_VERSION="\"$version ($commit)\""
install -m 755 bin/zonecopy bin/backup "$payload/bin/"
install -m 644 configuration.json.example "$payload/"
install -m 644 packaging/zonecopy-cron.xml packaging/zonecopy-serve.xml "$payload/smf/"
install -m 755 packaging/zonecopy-cron.sh "$payload/smf/"
install -m 644 packaging/README.install "$payload/README"
echo "$version ($commit)" >"$payload/VERSION"
if [ -n "${NODE_BINARY:-}" ]; then
  mkdir -p "$payload/node/bin"
  install -m 755 "$NODE_BINARY" "$payload/node/bin/node"
fi

# Reproducible: sorted names, fixed times and owners, no name or time in the gzip header.
find "$stage" -exec touch -h -d @0 {} +
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - zonecopy | gzip -n -9 >"$stage/payload.tar.gz"
sum=$(sha256sum "$stage/payload.tar.gz" | cut -d' ' -f1)
# The header's block count is in the header: one more digit can take one more block, hence the loop.
blocks=1
while :; do
  sed -e "s/@PAYLOAD_SHA256@/$sum/" -e "s/@VERSION@/$version ($commit)/" \
    -e "s/@HEADER_BLOCKS@/$blocks/" packaging/install-header.sh >"$stage/header"
  header_size=$(stat -c %s "$stage/header")
  needed=$(( (header_size + 511) / 512 ))
  [ "$needed" -gt "$blocks" ] || break
  blocks=$needed
done
padding=$(( blocks * 512 - header_size ))
if [ "$padding" -gt 0 ]; then
  # a comment line after the header's last command, never read by the shell
  { head -c $(( padding - 1 )) /dev/zero | tr '\0' '#'; echo; } >>"$stage/header"
fi
cat "$stage/header" "$stage/payload.tar.gz" >"$output"
chmod 755 "$output"
echo "$output: zonecopy $version ($commit), payload sha256 $sum, $(stat -c %s "$output") bytes"
