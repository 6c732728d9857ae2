#!/bin/sh
# fixedrate.sh: the cost of a query at a moderate, fixed rate (docs/performance.md, "DNS64").
#
# Usage: sh services/dns64/bench/fixedrate.sh DURATION WORKLOAD DNS64D... (from the repository root)
#   go build -o /tmp/dns64d ./services/dns64/bench/dns64d
#   sh services/dns64/bench/fixedrate.sh 5 synth50 /tmp/dns64d /tmp/dns64d-other
# At a fixed RATE (default 10000 qps), one dnsperf run per server (unbound's
# DNS64 first, then each dns64d given): server CPU time per query, thread
# context switches (voluntary and not, all threads) per query, p50/p99 in µs,
# and the queries dnsperf counted lost (no answer within its 5 s timeout).
# At a moderate rate these count what each wake-up costs, which run.sh's
# saturating runs hide; they depend much less on other load than the p99.
# GENV="VAR=value ..." is passed to every dns64d (e.g. GOGC=off, GOMAXPROCS=1).
# ROUNDS=N (default 1) repeats the runs, servers alternating, and then
# prints percentiles of all rounds' latencies together.
set -eu
DURATION=$1 WL=$2; shift 2
RATE=${RATE:-10000}
ROUNDS=${ROUNDS:-1}
W=$(mktemp -d /tmp/gzt-dns64-fixedrate.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM
awk 'BEGIN { print "$TTL 86400"; print "@ IN SOA ns hostmaster 1 3600 600 86400 3600"; print "@ IN NS ns"; print "ns IN A 127.0.0.1"
 for (i = 0; i < 10000; i++) { printf "v4-%d IN A 198.51.%d.%d\n", i, 100 + int(i / 250) % 4, i % 250; printf "dual-%d IN A 203.0.113.%d\n", i, i % 250; printf "dual-%d IN AAAA 2001:db8:ffff::%x\n", i, i } }' >"$W/bench.test.zone"
cat >"$W/named.conf" <<CONF
options { directory "$W"; pid-file none; listen-on port 5330 { 127.0.0.1; }; listen-on-v6 { none; }; recursion no; };
controls { };
zone "bench.test" { type primary; file "$W/bench.test.zone"; };
CONF
printf 'server:\n\tinterface: 127.0.0.1@5331\n\tdo-daemonize: no\n\tusername: ""\n\tchroot: ""\n\tdirectory: "%s"\n\tpidfile: ""\n\tuse-syslog: no\n\tlogfile: ""\n\tverbosity: 0\n\tnum-threads: 2\n\tso-reuseport: yes\n\taccess-control: 127.0.0.0/8 allow\n\tdo-not-query-localhost: no\n\tmodule-config: "dns64 iterator"\n\tdns64-prefix: 2001:db8:64::/96\n\tratelimit: 0\n\tlocal-zone: "test." nodefault\nforward-zone:\n\tname: "bench.test."\n\tforward-addr: 127.0.0.1@5330\n' "$W" > "$W/unbound.conf"
awk -v w="$W" 'BEGIN { for (i = 0; i < 1000; i++) { printf "dual-%d.bench.test AAAA\ndual-%d.bench.test A\n", i, i >w "/hits.txt"; printf "v4-%d.bench.test AAAA\ndual-%d.bench.test AAAA\n", i, i >w "/synth50.txt" } }'
named -g -n 1 -c "$W/named.conf" >"$W/named.log" 2>&1 & PIDS="$PIDS $!"
unbound -d -c "$W/unbound.conf" >"$W/unbound.log" 2>&1 & UP=$!; PIDS="$PIDS $UP"
ports="5331"; pids="$UP"; names="unbound"; port=5340
for b in "$@"; do
  env GOMAXPROCS=2 ${GENV:-} "$b" -listen 127.0.0.1:$port -upstream 127.0.0.1:5330 -pref64 2001:db8:64::/96 >"$W/g$port.out" 2>"$W/g$port.err" & P=$!; PIDS="$PIDS $P"
  ports="$ports $port"; pids="$pids $P"; names="$names $(basename $b)"; port=$((port+1))
done
sleep 2
set -- $pids
for p in $ports; do dnsperf -s 127.0.0.1 -p $p -d "$W/$WL.txt" -n 2 >/dev/null 2>&1; done
cs() { cat /proc/$1/task/*/status | awk '/voluntary_ctxt_switches/ {s+=$2} END {print s}'; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "# $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) wl=$WL rate=$RATE rounds=$ROUNDS; cpu-us/q ctxsw/q p50/p99"
r=0
while [ $r -lt "$ROUNDS" ]; do
  i=1
  for p in $ports; do
    eval pid=\${$i}; i=$((i+1))
    c0=$(cpu $pid); s0=$(cs $pid)
    out=$(dnsperf -s 127.0.0.1 -p $p -d "$W/$WL.txt" -l "$DURATION" -c 8 -q 100 -T 1 -Q "$RATE" -v 2>/dev/null)
    c1=$(cpu $pid); s1=$(cs $pid)
    n=$(echo "$out" | awk '/Queries completed/ {print $3}')
    lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
    echo "$out" | awk '$1 == ">" {print $NF * 1e6}' | sort -n > "$W/round"
    cat "$W/round" >> "$W/all$p"
    lat=$(awk '{v[NR]=$1} END {printf "%.0f/%.0f", v[int(NR*0.5)], v[int(NR*0.99)]}' "$W/round")
    echo "$p $(awk -v c=$((c1-c0)) -v s=$((s1-s0)) -v n=$n 'BEGIN {printf "%.2f %.3f", c/100*1e6/n, s/n}') $lat threads=$(ls /proc/$pid/task | wc -l) lost=$lost"
  done
  r=$((r+1))
done
if [ "$ROUNDS" -gt 1 ]; then
  # Every round's latencies together. One round with a stall moves these
  # percentiles, which the median of the rounds' p99s hides: read both.
  echo "# all rounds together, µs: p50 p90 p95 p99 p99.5 p99.9"
  for p in $ports; do
    sort -n "$W/all$p" | awk -v p=$p '{v[NR]=$1} END {printf "%s %d %d %d %d %d %d (n=%d)\n", p, v[int(NR*.5)], v[int(NR*.9)], v[int(NR*.95)], v[int(NR*.99)], v[int(NR*.995)], v[int(NR*.999)], NR}'
  done
fi
echo "# end load $(cut -d' ' -f1-3 /proc/loadavg) ($names)"
