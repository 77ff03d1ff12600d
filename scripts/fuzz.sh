#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for a fixed number of inputs (docs/fuzzing.md). A crash, a hang
# (an input running longer than FUZZ_TIMEOUT seconds) or memory beyond FUZZ_RSS_MB fails the
# script, with the input saved under fuzz/artifacts/<target>/.
#
# First the corpus (fuzz/corpus/<target>/) is replayed through the targets as an ordinary test
# on the stable toolchain; that always runs. Fuzzing needs cargo-fuzz, installed when missing,
# built without a sanitizer so that the stable toolchain is enough. When cargo-fuzz cannot be
# installed, built or started here, the script says so and ends after the replay.
#
# Settings (environment):
#   FUZZ_RUNS       inputs per target (default 200000: about a minute for all targets on 2 cores)
#   FUZZ_TARGETS    targets to run, space-separated (default: all of them)
#   FUZZ_SEED       libFuzzer seed (default 1, for the same run every time; 0 picks one)
#   FUZZ_TIMEOUT    seconds one input may take (default 10)
#   FUZZ_RSS_MB     memory limit in MiB (default 1024)
#   FUZZ_MAX_LEN    longest input generated, in bytes (default 4096)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default none; address needs a nightly toolchain)
#   FUZZ_TARGET_DIR where instrumented builds go (default fuzz/target, apart from normal builds)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${FUZZ_RUNS:-200000}
seed=${FUZZ_SEED:-1}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-1024}
max_len=${FUZZ_MAX_LEN:-4096}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
all_targets=$(ls fuzz/fuzz_targets | sed -n 's/\.rs$//p')
targets=${FUZZ_TARGETS:-$all_targets}
build=(--sanitizer "$sanitizer" --codegen-units 16 --target-dir "$target_dir")
started=$SECONDS

echo "== fuzz: replaying fuzz/corpus through every target"
cargo test --locked -p server --test fuzz_corpus

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== fuzz: installing cargo-fuzz"
  if ! cargo install cargo-fuzz --locked; then
    echo "warning: cargo-fuzz could not be installed; only the corpus replay ran" >&2
    exit 0
  fi
fi

# The fuzz crate has its own lock file; like the workspace's, CI does not rewrite it.
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "error: fuzz/Cargo.lock is out of date: run 'cargo update --manifest-path fuzz/Cargo.toml --workspace' and commit it" >&2
  exit 1
fi

echo "== fuzz: building the targets (cargo fuzz build ${build[*]})"
if ! cargo fuzz build "${build[@]}"; then
  echo "warning: cargo-fuzz cannot build the targets with this toolchain ($(rustc --version)); only the corpus replay ran" >&2
  exit 0
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for target in $targets; do
  artifacts=$PWD/fuzz/artifacts/$target
  mkdir -p "$artifacts" "$logs/$target.corpus"
  # New inputs go to a scratch directory (the first one given): the committed corpus stays as it is.
  if cargo fuzz run "${build[@]}" "$target" "$logs/$target.corpus" "$PWD/fuzz/corpus/$target" -- \
    -runs="$runs" -seed="$seed" -timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -max_len="$max_len" -artifact_prefix="$artifacts/" -print_final_stats=1 >"$logs/$target.log" 2>&1; then
    echo "== fuzz: $target: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$') inputs, peak $(grep -m1 -o 'stat::peak_rss_mb: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$') MiB"
  elif grep -q -e '^INFO: Running with entropic' -e '^INFO: Seed:' "$logs/$target.log"; then
    # libFuzzer ran and stopped on an input: a finding.
    tail -n 60 "$logs/$target.log" >&2
    echo "error: fuzz target $target failed; the input is in fuzz/artifacts/$target/ (see docs/fuzzing.md)" >&2
    failed+=("$target")
  else
    cat "$logs/$target.log" >&2
    echo "warning: cargo-fuzz could not start $target; only the corpus replay covers it" >&2
  fi
done

echo "== fuzz: done in $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
