#!/usr/bin/env bash
# Read-only checks of a host before pinning cexnode to a core: prints findings, changes nothing.
# Usage: scripts/host_check.sh [CPU]
set -u
cpu=${1:-1}
ok() { printf '  ok    %s\n' "$*"; }
warn() { printf '  WARN  %s\n' "$*"; }

echo "cexnode host check (core $cpu)"
ncpu=$(nproc --all)
[ "$cpu" -lt "$ncpu" ] && ok "core $cpu exists ($ncpu CPUs)" || warn "core $cpu does not exist ($ncpu CPUs)"

cmdline=$(cat /proc/cmdline 2>/dev/null || true)
case "$cmdline" in *isolcpus=*) ok "isolcpus set: $(grep -o 'isolcpus=[^ ]*' /proc/cmdline)";; *) warn "no isolcpus= on the kernel command line: other tasks may run on core $cpu";; esac
case "$cmdline" in *nohz_full=*) ok "nohz_full set";; *) warn "no nohz_full=: timer ticks will interrupt core $cpu";; esac

gov=/sys/devices/system/cpu/cpu$cpu/cpufreq/scaling_governor
if [ -r "$gov" ]; then
  g=$(cat "$gov"); [ "$g" = performance ] && ok "governor performance" || warn "governor is $g (want performance)"
else
  warn "no cpufreq governor visible (VM or driver without cpufreq)"
fi

thp=/sys/kernel/mm/transparent_hugepage/enabled
[ -r "$thp" ] && { grep -q '\[never\]\|\[madvise\]' "$thp" && ok "THP: $(cat $thp)" || warn "THP always on: latency spikes from compaction"; }

if [ -r /proc/interrupts ]; then
  n=$(awk -v c=$((cpu + 2)) 'NR>1 && $c ~ /^[0-9]+$/ && $c > 0 {n++} END {print n+0}' /proc/interrupts)
  [ "$n" -eq 0 ] && ok "no IRQs served on core $cpu" || warn "$n IRQ lines have fired on core $cpu (set /proc/irq/*/smp_affinity)"
fi

if command -v chronyc >/dev/null 2>&1; then ok "chrony present (signed requests need a synced clock)"; else warn "chrony not found: keep the clock synced (Gate rejects requests > 60 s off, MEXC > recvWindow)"; fi
ulimit -n | awk '{ if ($1 >= 65536) print "  ok    nofile " $1; else print "  WARN  nofile " $1 " (want >= 65536)" }'
