#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, npm packages), builds, runs the whole suite,
# and ends with the skipped tests and why, the failing tests (file > title), and one line
# "N passed, N failed, N skipped". Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in docker-registry:docker-registry skopeo:skopeo umoci:umoci ctr:containerd busybox:busybox-static htpasswd:apache2-utils setfattr:attr openssl:openssl fuse-overlayfs:fuse-overlayfs dockerd:docker.io xz:xz-utils bzip2:bzip2 zstd:zstd buildah:buildah podman:podman jq:jq; do
  command -v "${bin%%:*}" >/dev/null 2>&1 || need+=("${bin#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing Debian packages (run as root to install): ${need[*]}" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ ! -d tools/typedoc/node_modules ] || [ tools/typedoc/package-lock.json -nt tools/typedoc/node_modules/.package-lock.json ]; then
  npm run -s docs:setup
fi
npm run -s build
npm run -s typecheck

set +e
npx vitest run --reporter=default --reporter=./scripts/summary-reporter.ts "$@" 2>&1 | tee .vitest.log
status=${PIPESTATUS[0]}
set -e
# vitest itself failed before the summary reporter could speak (a config or startup error).
if ! tail -n 1 .vitest.log | grep -Eq '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'; then
  echo "vitest ended (exit $status) without its summary"
  echo "0 passed, 1 failed, 0 skipped"
  [ "$status" -ne 0 ] || status=1
fi
exit $status
