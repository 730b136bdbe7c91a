#!/bin/bash
# Builds dist/install.sh: one self-extracting shell archive that installs zonecopy into /opt on a
# SmartOS host (or any Unix with Node >= 20). The payload (bundled CLI, launchers, example config,
# SMF manifest and method, README, VERSION, optionally a node binary) is a reproducible tar.gz
# whose sha256 the installer checks before it writes anything.
#
#   ./build_distribution.sh                        # -> dist/install.sh
#   NODE_BINARY=/path/to/illumos/node ./build_distribution.sh   # embeds that node (offline hosts)
set -euo pipefail
cd "$(dirname "$0")"
export LC_ALL=C

version=$(node -p 'require("./package.json").version')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
stage=build/distribution
payload=$stage/zonecopy

npx tsc -p tsconfig.json
rm -rf "$stage"
mkdir -p "$payload/bin" "$payload/dist" "$payload/smf" dist
packaging/bundle.sh "$payload/dist" --define:ZONECOPY_VERSION="\"$version ($commit)\""
install -m 755 bin/zonecopy bin/backup "$payload/bin/"
install -m 644 configuration.json.example "$payload/"
install -m 644 packaging/zonecopy-cron.xml "$payload/smf/"
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
size=$(stat -c %s "$stage/payload.tar.gz")
sed -e "s/@PAYLOAD_SHA256@/$sum/" -e "s/@PAYLOAD_SIZE@/$size/" -e "s/@VERSION@/$version ($commit)/" \
  packaging/install-header.sh >dist/install.sh
cat "$stage/payload.tar.gz" >>dist/install.sh
chmod 755 dist/install.sh
echo "dist/install.sh: zonecopy $version ($commit), payload sha256 $sum, $(stat -c %s dist/install.sh) bytes"
