#!/usr/bin/env bash
# Fuzzes one parser for a while: runs one property of tests/fuzz.rs over and
# over (a fresh random seed each run) until MINUTES have passed, then prints
# the runs, the executions (runs x cases) and the failed runs. A failed run's
# output (proptest's minimal failing input) is kept in fuzz-failures/.
#
#   scripts/fuzz.sh TARGET MINUTES [CASES_PER_RUN]
#
# TARGET: arch_strings, nds_json, safetensors, scores_cache, nats_pickle or
# merge_shards.
# CI runs every property once with PROPTEST_CASES (default 32) instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:?usage: scripts/fuzz.sh TARGET MINUTES [CASES_PER_RUN]}"
minutes="${2:?usage: scripts/fuzz.sh TARGET MINUTES [CASES_PER_RUN]}"
cases="${3:-500}"
cd "$root"
bin="$(scripts/env.sh cargo test --release --test fuzz --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -1)"
[ -x "$bin" ] || { echo "fuzz.sh: cannot find the fuzz test binary" >&2; exit 2; }
end=$(( $(date +%s) + minutes * 60 ))
runs=0; failed=0
mkdir -p fuzz-failures
while [ "$(date +%s)" -lt "$end" ]; do
  log="$(mktemp)"
  if PROPTEST_CASES="$cases" scripts/env.sh "$bin" --exact "$target" --test-threads 1 >"$log" 2>&1; then
    rm -f "$log"
  else
    failed=$((failed + 1))
    mv "$log" "fuzz-failures/$target-$(date +%s).log"
  fi
  runs=$((runs + 1))
done
echo "$target: $runs runs x $cases cases = $((runs * cases)) executions in $minutes min; $failed failed runs"
[ "$failed" -eq 0 ]
