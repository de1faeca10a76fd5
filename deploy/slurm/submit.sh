#!/usr/bin/env bash
# Submits a sharded rbflex run to Slurm: an array job of N tasks, one shard
# each (shard.sbatch), and a merge job (merge.sbatch) that starts once every
# task has succeeded (--dependency=afterok). Prints the two job ids.
#
#   deploy/slurm/submit.sh N COMMAND OPTIONS... --out DIR
#   deploy/slurm/submit.sh 16 correlate --space nats-sss --all --out runs/sss
#   deploy/slurm/submit.sh 8 search --trials 10 --networks 1000 --out runs/search
#
# COMMAND is correlate or search with the unsharded run's options; --out is
# required (the shards write DIR/shard-K-of-N, the merge DIR; logs go to
# DIR/logs). Environment: RBFLEX, the binary (default: rbflex on PATH, else
# ./target/release/rbflex; it must be on a file system every node sees, with
# its libtorch); CPUS, cores per shard (default 1, passed as --jobs);
# SBATCH_ARGS, more sbatch options for both jobs (e.g. "--partition=cpu
# --time=2:00:00"); ARRAY, the tasks to submit (default 0-(N-1)).
#
# After a failed task the merge job waits forever (its dependency cannot be
# met): scancel it and run the same submit.sh again; finished shards find
# their networks scored and end at once, the failed one resumes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "submit: $*" >&2; exit 2; }
[ "$#" -ge 2 ] || die "usage: $0 N COMMAND OPTIONS... --out DIR (see the comments at its top)"
n="$1"; shift
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a number of shards (1 or more), got '$n'"
case "$1" in correlate|search) ;; *) die "COMMAND must be correlate or search, got '$1'" ;; esac
out="" prev=""
for a in "$@"; do
  case "$a" in --out=*) out="${a#--out=}" ;; --shard|--shard=*|--shards|--shards=*) die "give no --shard/--shards: submit.sh adds them" ;; *) [ "$prev" = --out ] && out="$a" ;; esac
  prev="$a"
done
[ -n "$out" ] || die "give the run's --out DIR (the shards and the merge meet there)"
command -v sbatch >/dev/null || die "no sbatch: no Slurm here (deploy/slurm/local-cluster.sh starts one on this machine)"
rbflex="${RBFLEX:-$(command -v rbflex || echo "$PWD/target/release/rbflex")}"
[ -x "$rbflex" ] || die "no rbflex binary at $rbflex (build it: make search, or set RBFLEX)"
export RBFLEX="$(cd "$(dirname "$rbflex")" && pwd)/$(basename "$rbflex")"
mkdir -p "$out/logs"
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
array="$(sbatch --parsable --array="${ARRAY:-0-$((n - 1))}" --cpus-per-task="${CPUS:-1}" \
  --output="$out/logs/shard-%a.out" ${SBATCH_ARGS:-} "$here/shard.sbatch" "$@" --shards "$n")"
array="${array%%;*}"
# shellcheck disable=SC2086
merge="$(sbatch --parsable --dependency="afterok:$array" --output="$out/logs/merge.out" \
  ${SBATCH_ARGS:-} "$here/merge.sbatch" "$@")"
merge="${merge%%;*}"
echo "$array $merge"
echo "submit: array job $array ($n shards of rbflex $1 into $out/shard-K-of-$n), merge job $merge after it; watch: squeue; logs in $out/logs" >&2
