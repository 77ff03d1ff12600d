#!/usr/bin/env bash
# Runs every test: unit tests, golden files, the kube-apiserver replay, and the end-to-end
# tests that drive the real server with kubectl 1.27–1.33.
set -euo pipefail
cd "$(dirname "$0")/.."
for v in 1.27 1.28 1.29 1.30 1.31 1.32 1.33; do
  if [ ! -x "/usr/lib/google-cloud-sdk/bin/kubectl.$v" ]; then
    echo "warning: /usr/lib/google-cloud-sdk/bin/kubectl.$v is missing; the kubectl tests will fail" >&2
  fi
done
cargo test --workspace --locked "$@"
