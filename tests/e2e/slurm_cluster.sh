#!/usr/bin/env bash
# A single-node Slurm cluster on the loopback, for the e2e tests (Debian 12 packages slurmctld,
# slurmd, slurm-client, munge). Everything lives under DIR: munge key, slurm.conf, state, logs,
# pid files; the sockets live in a short /tmp/koe-slurm.* folder (a unix socket path has at
# most 107 bytes) named in DIR/run_dir. Clients find the cluster through SLURM_CONF=DIR/slurm.conf
# (the munge socket is named in it).
#
#   slurm_cluster.sh check       exit 0 when the programs are installed, else 77 naming one
#   slurm_cluster.sh start DIR   start munged, slurmctld, slurmd; wait until the node is idle
#   slurm_cluster.sh stop DIR    cancel the jobs, stop the daemons started by start DIR
#
# A container gets no cgroups: processes are tracked through /proc (proctrack/linuxproc) and
# nothing is confined (task/none). Every wait is bounded. A start that fails prints the logs'
# last lines and exits 1, or 77 with the daemon's own line when the machine forbids what it needs.
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

PROGRAMS="munged slurmctld slurmd sbatch squeue sinfo scancel"
PACKAGES="slurmctld slurmd slurm-client munge"

die() { echo "slurm_cluster.sh: $*" >&2; exit 1; }
skip() { echo "slurm_cluster.sh: $*"; exit 77; }

check() {
    local p
    for p in $PROGRAMS; do
        command -v "$p" >/dev/null || skip "$p is not installed (apt-get install $PACKAGES)"
    done
}

# the pid in DIR/<name>.pid when that process is still the daemon <name>
live_pid() {
    local pid
    pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

# two free loopback ports in a row, picked at random so that clusters started side by side
# (other worktrees, other test runs) do not collide
free_ports() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768-)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null && continue
        echo "$p"
        return 0
    done
    die "no two free ports on 127.0.0.1 after 50 tries"
}

# the node as slurmd itself sees it (a node configured larger than that is drained)
node_size() {
    slurmd -C 2>/dev/null | sed -n 's/.* CPUs=\([0-9]*\) .* RealMemory=\([0-9]*\).*/CPUs=\1 RealMemory=\2/p'
}

write_conf() {
    local dir=$1 run=$2 port=$3 size
    size=$(node_size)
    [ -n "$size" ] || die "slurmd -C did not print the node's CPUs and RealMemory"
    cat > "$dir/slurm.conf" <<EOF
ClusterName=koe
# the loopback only: ports picked free, both daemons bound to 127.0.0.1
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
NodeName=localhost NodeAddr=127.0.0.1 $size State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
# a node that was down comes back when its slurmd registers
ReturnToService=2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$run/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$run/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: job processes found through /proc, nothing confined, nothing accounted
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
# first come first served, one core per array task; batch jobs start at once, not up to 3 s later
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
EOF
}

# With NoCtldInAddrAny/NoInAddrAny the daemons listen on what their hostname resolves to.
# Where that is not the loopback, they run in a UTS namespace of their own named localhost;
# where that is not permitted either, no Slurm: it would listen on the machine's network.
run_daemon() {
    local log=$1 addr
    shift
    addr=$(getent ahostsv4 "$(hostname)" | awk 'NR == 1 {print $1}')
    if [[ "$addr" == 127.* ]]; then
        timeout 20 "$@" </dev/null >>"$log" 2>&1
    elif unshare --uts true 2>/dev/null; then
        timeout 20 unshare --uts sh -c 'hostname localhost && exec "$@"' sh "$@" \
            </dev/null >>"$log" 2>&1
    else
        skip "hostname $(hostname) resolves to '$addr', not the loopback, and unshare --uts" \
             "is not permitted: slurmctld would listen on the network"
    fi
}

# the last lines of each log, and exit 77 with the daemon's line when the machine forbids it
report_failure() {
    local dir=$1 f line
    for f in "$dir"/log/*.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done >&2
    line=$(grep -hiE 'not permitted|permission denied|read-only file system|unable to init.*cgroup' \
        "$dir"/log/*.log 2>/dev/null | head -n 1)
    [ -n "$line" ] && skip "this machine forbids what Slurm needs: $line"
    die "$2"
}

wait_idle() {
    local dir=$1 state start=$SECONDS
    while [ $((SECONDS - start)) -lt 60 ]; do
        state=$(timeout 5 sinfo -h -N -n localhost -o %T 2>/dev/null)
        [ "$state" = idle ] && return 0
        # both daemons still there (after a grace of 5 s for their pid files)
        [ -n "$(live_pid "$dir" slurmctld)" ] && [ -n "$(live_pid "$dir" slurmd)" ] \
            || [ $((SECONDS - start)) -lt 5 ] || report_failure "$dir" "a daemon exited during start"
        sleep 0.5
    done
    report_failure "$dir" "the node is not idle after 60 s (state: '${state:-none}')"
}

start() {
    local dir run port
    dir=$(mkdir -p "$1" && cd "$1" && pwd) || die "cannot create $1"
    stop "$dir"
    CLUSTER_DIR=$dir # a start that fails leaves nothing running
    trap '[ $? -eq 0 ] || stop "$CLUSTER_DIR"' EXIT
    rm -rf "$dir/state" "$dir/log" "$dir/munge"
    run=$(mktemp -d /tmp/koe-slurm.XXXXXX) || die "cannot create a folder in /tmp"
    echo "$run" > "$dir/run_dir"
    mkdir -p "$dir/state" "$dir/log" "$run/spool" || die "cannot create the folders under $dir"
    mkdir -m 700 "$dir/munge" || die "cannot create $dir/munge"
    head -c 1024 /dev/urandom > "$dir/munge/munge.key" && chmod 400 "$dir/munge/munge.key"
    port=$(free_ports) || exit 1
    write_conf "$dir" "$run" "$port"
    export SLURM_CONF=$dir/slurm.conf
    # --force: munged otherwise refuses folders that fail its ownership and permission checks
    # (a socket folder not executable by all, a build tree writable by a group), none of which
    # matter to a test. Each daemon forks into the background and its parent returns; none
    # keeps the caller's stdout, or a reader of it (ctest) would wait for the daemons to end.
    timeout 20 munged --force --socket="$run/munge.socket" --key-file="$dir/munge/munge.key" \
        --log-file="$dir/log/munged.log" --pid-file="$dir/munged.pid" \
        --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/log/munged.log" 2>&1 \
        || report_failure "$dir" "munged did not start"
    run_daemon "$dir/log/slurmctld.log" slurmctld -c -f "$SLURM_CONF" \
        || report_failure "$dir" "slurmctld did not start"
    run_daemon "$dir/log/slurmd.log" slurmd -N localhost -f "$SLURM_CONF" \
        || report_failure "$dir" "slurmd did not start"
    wait_idle "$dir"
    echo "slurm_cluster.sh: up: SLURM_CONF=$SLURM_CONF, ports $port and $((port + 1)) on 127.0.0.1"
}

# running, not a zombie waiting for its parent (here: init) to reap it
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) && [ "$(echo "${stat##*) }" | cut -c1)" != Z ]
}

# TERM, then KILL after 10 s
end_pid() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 50); do
        alive "$1" || return 0
        sleep 0.2
    done
    kill -KILL "$1" 2>/dev/null
}

# a process and all its descendants, children first
kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do kill_tree "$child"; done
    kill -KILL "$1" 2>/dev/null
}

# the jobs first (scancel, while slurmctld runs; 20 s at most), then the daemons (10 s each at
# most), then any job step this cluster left behind (slurmstepd outlives slurmd and ignores TERM;
# it carries our SLURM_CONF)
stop() {
    local dir=$1 name pid run start=$SECONDS
    export SLURM_CONF=$dir/slurm.conf
    if [ -n "$(live_pid "$dir" slurmctld)" ]; then
        timeout 5 scancel --partition=debug 2>/dev/null
        while [ $((SECONDS - start)) -lt 15 ] && [ -n "$(timeout 5 squeue -h 2>/dev/null)" ]; do
            sleep 0.5
        done
    fi
    for name in slurmd slurmctld munged; do
        pid=$(live_pid "$dir" "$name") && end_pid "$pid"
        rm -f "$dir/$name.pid"
    done
    for pid in $(pgrep -x slurmstepd); do
        tr '\0' '\n' 2>/dev/null < "/proc/$pid/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF" \
            && kill_tree "$pid"
    done
    run=$(cat "$dir/run_dir" 2>/dev/null)
    [[ "$run" == /tmp/koe-slurm.* ]] && rm -rf "$run"
    rm -f "$dir/run_dir"
}

case "${1:-}" in
check) check ;;
start) [ $# -eq 2 ] || die "usage: $0 start DIR"; check; start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 check | start DIR | stop DIR" ;;
esac
