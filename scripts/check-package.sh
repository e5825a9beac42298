#!/usr/bin/env bash
# The package as users install it: pack it, install the tarball with its peers
# into an empty project, type-check small programs against dist/ with
# moduleResolution NodeNext and bundler, run them, check that internal modules
# cannot be imported, and run an application bundled with esbuild.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
npm run build --silent
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"

# The peers and tools at the versions this checkout is developed with.
installed() { node -p "require('$root/node_modules/$1/package.json').version"; }
peers=()
for name in $(node -p "Object.keys(require('$root/package.json').peerDependencies).join(' ')"); do
  peers+=("$name@$(installed "$name")")
done

cd "$work"
cat > package.json <<'JSON'
{ "name": "package-check", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "./$tarball" "${peers[@]}" \
  "typescript@$(installed typescript)" "@types/node@$(installed @types/node)" "@types/pg@$(installed @types/pg)" \
  "esbuild@$(installed esbuild)"

mkdir src
cp "$root"/scripts/package-check/*.ts src/
for resolution in NodeNext Bundler; do
  module=$([ "$resolution" = NodeNext ] && echo NodeNext || echo ESNext)
  cat > "tsconfig.$resolution.json" <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022"], "types": ["node"],
    "module": "$module", "moduleResolution": "$resolution",
    "strict": true, "exactOptionalPropertyTypes": true, "skipLibCheck": false,
    "outDir": "out-$resolution", "rootDir": "src"
  },
  "include": ["src"]
}
JSON
  # Other packages' declarations need more than lib ES2022 (DOM, WebAssembly):
  # only errors in the programs or in this package's own declarations count.
  npx tsc -p "tsconfig.$resolution.json" > "tsc-$resolution.log" || true
  if grep -E "^(src/|node_modules/effect-event-store/)" "tsc-$resolution.log"; then
    echo "type errors with moduleResolution $resolution" >&2
    exit 1
  fi
  echo "type-checked against dist/ with moduleResolution $resolution"
done

for program in memory pglite postgres testing internal; do
  node "out-NodeNext/$program.js"
done

# A bundle of the application and the library: it must run without the
# package's files (no migrations folder to read at start).
# (The banner is the usual one for ESM bundles of CommonJS dependencies such as pg.)
npx esbuild src/bundled.ts --bundle --platform=node --format=esm --log-level=warning \
  --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" \
  --external:@electric-sql/pglite --outfile=bundle/app.mjs
rm -rf node_modules/effect-event-store
node bundle/app.mjs
echo "package check: ok"
