#!/bin/bash
# Starts a single-node SLURM cluster on this machine (as root; Debian's slurm-wlm and munge), for
# trying the array scripts or for the optional test in packages/cli/src/cluster-examples.spec.ts
# (it runs when `sinfo` answers). Takes a few seconds once the packages are installed:
#   apt-get install -y slurm-wlm munge && examples/cluster/slurm-single-node.sh
set -euo pipefail
host=$(hostname -s)
cpus=$(nproc)
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /run/munge /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=fadtest
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
SlurmdUser=root
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -f /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
chown munge:munge /run/munge
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld -L /var/log/slurm/slurmctld.log
pgrep -x slurmd >/dev/null || slurmd -L /var/log/slurm/slurmd.log
for _ in $(seq 1 30); do sinfo -h >/dev/null 2>&1 && break; sleep 1; done
sinfo
