#!/usr/bin/env bash
# make test-slurm: the Slurm recipe (deploy/slurm/) on a real scheduler.
# Starts a single-node Slurm cluster on this machine (deploy/slurm/local-cluster.sh:
# installs slurm-wlm and munge with apt-get when missing), submits a 4-task
# array over 200 NB201 networks plus the merge job (deploy/slurm/submit.sh),
# waits for them, and checks the merged result against an unsharded run
# (scripts/same-run.py). Needs root and apt-get (or Slurm's packages already
# installed); elsewhere it prints why it is skipped and succeeds. Stops the
# cluster afterwards if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
skip() { echo "test-slurm: skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (it installs and starts a local Slurm cluster)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "needs apt-get to install slurm-wlm and munge (Debian/Ubuntu)"
fi
if [ -f /etc/slurm/slurm.conf ] && ! grep -qF "rbflex deploy/slurm/local-cluster.sh" /etc/slurm/slurm.conf; then
  skip "this machine has its own Slurm (/etc/slurm/slurm.conf); run deploy/slurm/submit.sh on it instead"
fi
command -v python3 >/dev/null || skip "needs python3 to compare the runs"

tb=$(date +%s.%N)
scripts/env.sh cargo build --release --quiet
rbflex="$PWD/target/release/rbflex"
t0=$(date +%s.%N)
span() { echo "$2 $1" | awk '{printf "%.1f", $1 - $2}'; }

started=no
if ! deploy/slurm/local-cluster.sh status 2>/dev/null | grep -q "^slurmctld running"; then started=yes; fi
tmp="$(mktemp -d /tmp/rbflex-test-slurm.XXXXXX)"
cleanup() {
  rm -rf "$tmp"
  if [ "$started" = yes ]; then deploy/slurm/local-cluster.sh stop || true; fi
}
trap cleanup EXIT
if ! deploy/slurm/local-cluster.sh start; then
  if ! command -v slurmctld >/dev/null; then skip "could not install slurm-wlm and munge (no package mirror?)"; fi
  echo "test-slurm: FAILED: the local cluster did not start" >&2; exit 1
fi
t1=$(date +%s.%N)

run=(correlate --space nb201 --sample 200 --seed 1)
"$rbflex" "${run[@]}" --out "$tmp/whole" --quiet >/dev/null
t2=$(date +%s.%N)
read -r array merge < <(RBFLEX="$rbflex" deploy/slurm/submit.sh 4 "${run[@]}" --out "$tmp/sharded")
[ -n "$merge" ] || { echo "test-slurm: FAILED: submit.sh gave no job ids" >&2; exit 1; }
state=""
for _ in $(seq 1200); do
  state="$(scontrol show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n1 | cut -d= -f2)"
  reason="$(scontrol show job "$merge" 2>/dev/null | grep -o 'Reason=[A-Za-z_]*' | head -n1 | cut -d= -f2)"
  case "$state" in COMPLETED) break ;; PENDING|RUNNING|CONFIGURING|COMPLETING) ;; *) break ;; esac
  [ "$reason" != DependencyNeverSatisfied ] || { state="never started (a shard failed)"; break; }
  sleep 0.5
done
t3=$(date +%s.%N)
if [ "$state" != COMPLETED ]; then
  echo "test-slurm: FAILED: merge job $merge ended ${state:-unknown}; logs:" >&2
  tail -n 5 "$tmp"/sharded/logs/*.out >&2 || true
  scontrol show job "$array" | grep -E "JobId|JobState" >&2 || true
  exit 1
fi
tasks="$(scontrol show job "$array" | grep -c 'JobState=COMPLETED')"
[ "$tasks" = 4 ] || { echo "test-slurm: FAILED: $tasks of 4 array tasks COMPLETED" >&2; exit 1; }
for k in 0 1 2 3; do
  [ -s "$tmp/sharded/shard-$k-of-4/scores.csv" ] || { echo "test-slurm: FAILED: shard $k wrote no scores" >&2; exit 1; }
done
grep -q "scored in 0.0 s wall in this run" "$tmp/sharded/logs/merge.out" \
  || { echo "test-slurm: FAILED: the correlate after the merge scored networks again" >&2; cat "$tmp/sharded/logs/merge.out" >&2; exit 1; }
python3 scripts/same-run.py "$tmp/whole" "$tmp/sharded"
t4=$(date +%s.%N)
echo "test-slurm: passed in $(span "$t0" "$t4") s wall after the build ($(span "$tb" "$t0") s): cluster up $(span "$t0" "$t1") s," \
  "unsharded run $(span "$t1" "$t2") s, submit to merged report $(span "$t2" "$t3") s (array job $array, merge job $merge)"
