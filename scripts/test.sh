#!/usr/bin/env bash
# Runs every test: unit tests, golden files, the kube-apiserver replay, and the end-to-end
# tests that drive the real server with kubectl 1.27–1.33; then fuzzes (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for v in 1.27 1.28 1.29 1.30 1.31 1.32 1.33; do
  if [ ! -x "/usr/lib/google-cloud-sdk/bin/kubectl.$v" ]; then
    echo "warning: /usr/lib/google-cloud-sdk/bin/kubectl.$v is missing; the kubectl tests will fail" >&2
  fi
done
# The etcd storage tests start their own etcd server: Debian's etcd-server (3.4 on bookworm).
if ! command -v "${ETCD:-etcd}" >/dev/null 2>&1; then
  echo "etcd is missing: installing Debian's etcd-server for the etcd storage tests" >&2
  if [ "$(id -u)" = 0 ]; then
    (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server) ||
      echo "warning: installing etcd-server failed; the etcd tests will fail" >&2
  elif command -v sudo >/dev/null 2>&1; then
    (sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server) ||
      echo "warning: installing etcd-server failed; the etcd tests will fail" >&2
  else
    echo "warning: cannot install etcd-server (not root, no sudo); the etcd tests will fail" >&2
  fi
fi
# The deploy manifests are checked against Kubernetes' schemas with kubernetes-validate (PyPI);
# the test installs it with pip itself when this did not, and is skipped only without pip.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip install --quiet kubernetes-validate ||
      echo "warning: installing kubernetes-validate failed; the manifest test will try again" >&2
  else
    echo "warning: no pip: the manifest validation test will be skipped" >&2
  fi
fi
cargo test --workspace --locked "$@"
# Every fuzz target for a fixed number of inputs (docs/fuzzing.md). Where cargo-fuzz cannot be
# installed or built, it only replays the corpus, which the tests above already did.
./scripts/fuzz.sh
