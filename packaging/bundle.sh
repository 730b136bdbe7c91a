#!/bin/sh
# Bundles the compiled CLI (build/) into OUTDIR/zonecopy.mjs plus OUTDIR/chunks/, loaded on demand
# (the AWS SDK only by S3 runs). Plain `node` runs it; used by `npm run bundle` and build_distribution.sh.
#   packaging/bundle.sh OUTDIR [extra esbuild arguments]
set -eu
out=$1
shift
rm -rf "$out/chunks" "$out/zonecopy.mjs"
npx esbuild build/src/cli/run.js --bundle --splitting --platform=node --target=node20 --format=esm --log-level=warning \
  --external:cpu-features '--external:*.node' \
  --banner:js="import { createRequire as __zcRequire } from 'node:module'; import { fileURLToPath as __zcPath } from 'node:url'; import { dirname as __zcDir } from 'node:path'; const require = __zcRequire(import.meta.url); const __filename = __zcPath(import.meta.url); const __dirname = __zcDir(__filename);" \
  --outdir="$out" --entry-names=zonecopy --chunk-names='chunks/[name]-[hash]' --out-extension:.js=.mjs "$@"
