#!/bin/sh
# Benchmark: the gizmo's DNS64 (services/dns64, run alone as dns64d) against
# unbound's DNS64 module, both forwarding to the same authoritative BIND 9
# on loopback, with dnsperf and the same query files.
#
#   sudo services/dns64/bench/run.sh            # from the repository root
#
# Environment: DURATION (seconds per run, default 10), RATE (fixed load for
# the latency runs, default 20000 qps), THREADS (unbound threads and
# GOMAXPROCS for dns64d, default: number of CPUs).
set -eu

DURATION=${DURATION:-10}
RATE=${RATE:-20000}
THREADS=${THREADS:-$(nproc)}
UP_PORT=5300 UNBOUND_PORT=5301 GIZMO_PORT=5302
W=$(mktemp -d /tmp/gzt-dns64-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM

for tool in named unbound dnsperf go; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

# The zone: 10,000 IPv4-only names and 10,000 dual-stack names, TTLs long
# enough that nothing expires during the runs.
{
	echo '$TTL 86400'
	echo '@ IN SOA ns hostmaster 1 3600 600 86400 3600'
	echo '@ IN NS ns'
	echo 'ns IN A 127.0.0.1'
	i=0
	while [ $i -lt 10000 ]; do
		echo "v4-$i IN A 198.51.$((100 + i / 250 % 4)).$((i % 250))"
		echo "dual-$i IN A 203.0.113.$((i % 250))"
		echo "dual-$i IN AAAA 2001:db8:ffff::$(printf %x $i)"
		i=$((i + 1))
	done
} >"$W/bench.test.zone"

cat >"$W/named.conf" <<CONF
options { directory "$W"; pid-file none; listen-on port $UP_PORT { 127.0.0.1; }; listen-on-v6 { none; }; recursion no; };
controls { };
zone "bench.test" { type primary; file "$W/bench.test.zone"; };
CONF

cat >"$W/unbound.conf" <<CONF
server:
	interface: 127.0.0.1@$UNBOUND_PORT
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$W"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 0
	num-threads: $THREADS
	so-reuseport: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	module-config: "dns64 iterator"
	dns64-prefix: 2001:db8:64::/96
	ratelimit: 0
forward-zone:
	name: "bench.test."
	forward-addr: 127.0.0.1@$UP_PORT
CONF

# Query files.
i=0
: >"$W/hits.txt"; : >"$W/synth50.txt"; : >"$W/fill10k.txt"
while [ $i -lt 1000 ]; do
	# All cache hits, no synthesis: A and AAAA of dual-stack names.
	echo "dual-$i.bench.test AAAA" >>"$W/hits.txt"
	echo "dual-$i.bench.test A" >>"$W/hits.txt"
	# Half of the answers synthesized.
	echo "v4-$i.bench.test AAAA" >>"$W/synth50.txt"
	echo "dual-$i.bench.test AAAA" >>"$W/synth50.txt"
	i=$((i + 1))
done
i=0
while [ $i -lt 10000 ]; do echo "v4-$i.bench.test A" >>"$W/fill10k.txt"; i=$((i + 1)); done

go build -o "$W/dns64d" ./services/dns64/bench/dns64d

named -g -n 1 -c "$W/named.conf" >"$W/named.log" 2>&1 & PIDS="$PIDS $!"
unbound -d -c "$W/unbound.conf" >"$W/unbound.log" 2>&1 & PIDS="$PIDS $!"
GOMAXPROCS=$THREADS "$W/dns64d" -listen 127.0.0.1:$GIZMO_PORT -upstream 127.0.0.1:$UP_PORT \
	-pref64 2001:db8:64::/96 -udp-sockets "$THREADS" >"$W/dns64d.out" 2>&1 & GIZMO_PID=$!
PIDS="$PIDS $GIZMO_PID"
sleep 2

# qps: saturate for DURATION seconds after a warm-up pass that fills the
# cache.
qps() { # port file
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -n 1 >/dev/null 2>&1
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 16 -q 256 -T 1 2>&1 |
		awk '/Queries per second/ {q=$4} /Average Latency/ {l=$4} /Queries lost/ {lost=$3}
		     END {printf "%.0f qps, mean latency %.0f us, lost %s\n", q, l*1e6, lost}'
}
# latency: a fixed load of RATE qps, every query's latency from dnsperf -v.
lat() { # port file
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 16 -q 256 -T 1 -Q "$RATE" -v 2>/dev/null |
		awk '$1 == ">" {print $NF * 1e6}' | sort -n |
		awk '{v[NR]=$1} END {printf "p50 %.0f us, p99 %.0f us, p99.9 %.0f us (%d queries)\n", v[int(NR*0.5)], v[int(NR*0.99)], v[int(NR*0.999)], NR}'
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, threads $THREADS, $DURATION s per run, latency at $RATE qps"
echo "# $(unbound -V | head -1), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
for wl in hits synth50; do
	echo "## workload $wl"
	echo "unbound qps:  $(qps $UNBOUND_PORT "$W/$wl.txt")"
	echo "dns64d  qps:  $(qps $GIZMO_PORT "$W/$wl.txt")"
	echo "unbound lat:  $(lat $UNBOUND_PORT "$W/$wl.txt")"
	echo "dns64d  lat:  $(lat $GIZMO_PORT "$W/$wl.txt")"
done

echo "## memory"
dnsperf -s 127.0.0.1 -p $GIZMO_PORT -d "$W/fill10k.txt" -n 1 >/dev/null 2>&1
kill -USR1 $GIZMO_PID; sleep 1
echo "dns64d cache entries: $(tail -1 "$W/dns64d.out" | sed 's/.*"CacheEntries":\([0-9]*\).*/\1/')"
echo "dns64d RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$GIZMO_PID/status)"
echo "unbound RSS: $(for p in $PIDS; do [ "$(cat /proc/$p/comm 2>/dev/null)" = unbound ] && awk '/VmRSS/ {print $2, $3}' /proc/$p/status; done)"
