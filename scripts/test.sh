#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, npm packages), builds, runs the whole suite,
# and ends with one line "N passed, N failed". Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in docker-registry:docker-registry skopeo:skopeo umoci:umoci ctr:containerd busybox:busybox-static htpasswd:apache2-utils setfattr:attr openssl:openssl fuse-overlayfs:fuse-overlayfs dockerd:docker.io xz:xz-utils bzip2:bzip2 zstd:zstd buildah:buildah podman:podman; do
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

rm -f .vitest.json
set +e
npx vitest run --reporter=default --reporter=json --outputFile=.vitest.json "$@"
status=$?
set -e
if [ -f .vitest.json ]; then
  node -e "const r=require('./.vitest.json');const f=r.numFailedTests+(r.numRuntimeErrorTestSuites||0)+(r.testResults||[]).filter(t=>t.status==='failed'&&(!t.assertionResults||t.assertionResults.length===0)).length;console.log(r.numPassedTests+' passed, '+f+' failed')"
else
  echo "0 passed, 1 failed"
  exit 1
fi
exit $status
