#!/usr/bin/env bash
# slurm_cluster.sh start DIR | stop DIR
# A real two-node Slurm on this one host, for tests: munged with its own key
# and socket, slurmctld, and two slurmd (-N n1, -N n2; Debian's slurmd has
# multiple-slurmd support), all state under DIR, ports derived from DIR's
# name so parallel runs do not collide. `start` prints the SLURM_CONF to use
# and waits until both nodes are idle. No systemd, no cgroups.
set -euo pipefail
cmd=$1 dir=$2
conf=$dir/slurm.conf

stop() {
  for p in "$dir"/slurmd-*.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
    [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    pgrep -f -- "-f $conf" >/dev/null || break
    sleep 0.1
  done
  pkill -9 -f -- "-f $conf" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

port=$((20000 + $(cksum <<<"$dir" | cut -d' ' -f1) % 20000))
chmod 755 "$dir"
mkdir -p "$dir"/state "$dir"/log "$dir"/spool/n1 "$dir"/spool/n2 "$dir"/tmp/n1 "$dir"/tmp/n2
dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 2>/dev/null
chmod 400 "$dir/munge.key"
cat >"$conf" <<CONF
ClusterName=zshardtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
TmpFS=$dir/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdTimeout=30
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=2
MinJobAge=60
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((port + 1)) CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((port + 2)) CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
/usr/sbin/munged --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
/usr/sbin/slurmctld -f "$conf"
/usr/sbin/slurmd -f "$conf" -N n1
/usr/sbin/slurmd -f "$conf" -N n2
export SLURM_CONF=$conf
for _ in $(seq 1 300); do
  if [ "$(sinfo -h -o %T 2>/dev/null | sort -u)" = idle ] && [ "$(sinfo -h -o %D 2>/dev/null)" = 2 ]; then
    echo "$conf"
    exit 0
  fi
  sleep 0.1
done
echo "slurm_cluster: nodes did not come up; logs in $dir/log" >&2
sinfo >&2 || true
tail -n 5 "$dir"/log/* >&2 || true
stop
exit 1
