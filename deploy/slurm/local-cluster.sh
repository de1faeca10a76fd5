#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, to try the sharded-run recipe
# (deploy/slurm/submit.sh) and to test it (make test-slurm): Debian's slurm-wlm
# and munge, slurmctld and slurmd on localhost run as root, no cgroups, no
# accounting database. Idempotent: installs what is missing, writes the
# configuration, starts what is not running, then waits until the node is idle.
#
#   deploy/slurm/local-cluster.sh [start]   install, configure, start, wait
#   deploy/slurm/local-cluster.sh status    the daemons and the node
#   deploy/slurm/local-cluster.sh stop      stop the daemons (munged only if this script started it)
#
# Needs root and, for the install, apt-get (Debian or Ubuntu). It writes
# /etc/slurm/slurm.conf and refuses to replace one it did not write (this is
# for machines without Slurm); its state, logs and pid files go to
# /var/lib/rbflex-slurm.
set -euo pipefail

conf=/etc/slurm/slurm.conf
marker="# written by rbflex deploy/slurm/local-cluster.sh"
state=/var/lib/rbflex-slurm
node=localhost

die() { echo "local-cluster: $*" >&2; exit 1; }
say() { echo "local-cluster: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root (the daemons run as root on this machine)"

pid_alive() { local p; p="$(cat "$1" 2>/dev/null)" && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

install() {
  local missing=()
  for b in slurmctld slurmd sbatch munged; do command -v "$b" >/dev/null || missing+=("$b"); done
  [ "${#missing[@]}" = 0 ] && return
  command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get to install slurm-wlm and munge"
  say "installing slurm-wlm and munge (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } \
    || die "apt-get could not install slurm-wlm and munge"
}

configure() {
  if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script: this machine has its own Slurm; use it (deploy/slurm/submit.sh) instead"
  fi
  mkdir -p "$state"/{ctld,slurmd,log,run} /etc/slurm
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key; else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  local tmp="$conf.tmp"
  cat > "$tmp" <<EOF
$marker
# A single-node cluster: slurmctld and slurmd on $node, as root; no cgroups,
# no accounting. Remove with: deploy/slurm/local-cluster.sh stop; rm $conf
ClusterName=rbflex
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$conf" ] && cmp -s "$tmp" "$conf"; then rm "$tmp"; return; fi
  mv "$tmp" "$conf"
  # a changed configuration (say, another CPU count) needs fresh daemons
  if pid_alive "$state/run/slurmctld.pid"; then say "configuration changed: restarting"; stop_slurm; fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged
  touch "$state/run/munged.ours"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
  die "munged did not start (see /var/log/munge/munged.log)"
}

start_slurm() {
  pid_alive "$state/run/slurmctld.pid" || slurmctld
  pid_alive "$state/run/slurmd.pid" || slurmd -N "$node"
  local t=0 s=""
  while :; do
    s="$(sinfo -h -N -n "$node" -o %t 2>/dev/null || true)"
    case "$s" in
      idle|mix|alloc) break ;;
      down*|drain*|drng*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
    esac
    t=$((t + 1))
    [ "$t" -lt 120 ] || die "the node is not idle after 60 s (state '${s:-none}'; see $state/log/)"
    sleep 0.5
  done
  say "up: node $node ($(nproc) CPUs) in partition local; try: sinfo; squeue"
}

stop_slurm() {
  if pid_alive "$state/run/slurmctld.pid"; then scontrol shutdown >/dev/null 2>&1 || true; fi
  for d in slurmctld slurmd; do
    local p="$state/run/$d.pid"
    for _ in $(seq 100); do pid_alive "$p" || break; sleep 0.1; done
    if pid_alive "$p"; then kill "$(cat "$p")" 2>/dev/null || true; fi
  done
}

stop() {
  stop_slurm
  if [ -f "$state/run/munged.ours" ] && pid_alive /run/munge/munged.pid; then
    kill "$(cat /run/munge/munged.pid)"
  fi
  rm -f "$state/run/munged.ours"
  say "stopped"
}

status() {
  for p in "$state/run/slurmctld.pid" "$state/run/slurmd.pid" /run/munge/munged.pid; do
    if pid_alive "$p"; then echo "$(basename "$p" .pid) running (pid $(cat "$p"))"; else echo "$(basename "$p" .pid) not running"; fi
  done
  sinfo 2>/dev/null || true
}

case "${1:-start}" in
  start) install; configure; start_munge; start_slurm ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
