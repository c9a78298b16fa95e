#!/usr/bin/env bash
# Builds the production bundle of the metrics-distributor server into DIR: the CLI, the built dist/
# of every workspace package it needs, and only production dependencies. DIR is self-contained: copy
# or move it anywhere (the Docker image, /opt) and run `node DIR/bin/metrics-distributor.js`.
#
# Usage: deploy/bundle.sh DIR      (DIR must not exist or be empty)
# Needs a prior `pnpm install --frozen-lockfile`: the bundle is installed offline from that store, so
# it holds exactly the lockfile's versions and needs no registry.
set -euo pipefail

dest=${1:?usage: deploy/bundle.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
pnpm=(npx -y pnpm@10.34.9)

if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "bundle.sh: $dest exists and is not empty" >&2
  exit 2
fi

cd "$root"
# The deployed packages ship their dist/ as it is; build it first (turbo's cache makes this free when
# nothing changed). BUNDLE_SKIP_BUILD=1 for callers that just built.
if [ "${BUNDLE_SKIP_BUILD:-}" != 1 ]; then
  "${pnpm[@]}" exec turbo run build --filter @metrics-distributor/cli... --output-logs=errors-only >&2
fi
# pnpm 10 deploys from a shared lockfile only with injected workspace packages (copies, not symlinks
# into packages/), which is also what a bundle moved out of the repository needs. Set here rather than
# in .npmrc so the workspace itself keeps its symlinked packages.
"${pnpm[@]}" --config.inject-workspace-packages=true --filter @metrics-distributor/cli \
  deploy --prod --offline "$dest" >&2

# A bundle that cannot even print its help is broken; fail here rather than in the image.
node "$dest/bin/metrics-distributor.js" --help >/dev/null
echo "bundle.sh: production bundle in $dest; run: node $dest/bin/metrics-distributor.js" >&2
