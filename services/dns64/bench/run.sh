#!/bin/sh
# Benchmark: the gizmo's DNS64 (services/dns64, run alone as dns64d, in the
# configuration the daemon ships) against unbound's DNS64 module, both
# forwarding to the same authoritative BIND 9 on loopback, with dnsperf and
# the same query files. It reports the two goals: (a) qps from one client
# (dnsperf from 127.0.0.1), against unbound's; (b) fairness: while one host
# floods the server at full speed (dnsflood from 127.0.0.2), the share of a
# second host's queries (dnsperf -Q FAIRQPS from 127.0.0.3) answered within
# 1 s.
#
#   sudo services/dns64/bench/run.sh            # from the repository root
#
# Environment: DURATION (seconds per run, default 10), ROUNDS (default 3),
# FAIRQPS (the second host's rate, default 200),
# RATE (fixed load for the latency runs, default 10000 qps), THREADS
# (unbound threads, GOMAXPROCS and UDP sockets of dns64d; default: CPUs),
# DNS64D (a prebuilt dns64d to measure instead of this tree's, e.g. an older
# revision's), SATLAT=1 (also p50/p99 of a third, saturating run per round:
# latency under the load the qps runs put on).
set -eu

DURATION=${DURATION:-10}
RATE=${RATE:-10000}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
UP_PORT=5300 UNBOUND_PORT=5301 GIZMO_PORT=5302
W=$(mktemp -d /tmp/gzt-dns64-bench.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT INT TERM

for tool in named unbound dnsperf dig go; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

# The zone: 10,000 IPv4-only names and 10,000 dual-stack names, TTLs long
# enough that nothing expires during the runs.
# (awk, not a shell loop: forking printf 10,000 times took minutes on a busy VM)
awk 'BEGIN {
	print "$TTL 86400"
	print "@ IN SOA ns hostmaster 1 3600 600 86400 3600"
	print "@ IN NS ns"
	print "ns IN A 127.0.0.1"
	for (i = 0; i < 10000; i++) {
		printf "v4-%d IN A 198.51.%d.%d\n", i, 100 + int(i / 250) % 4, i % 250
		printf "dual-%d IN A 203.0.113.%d\n", i, i % 250
		printf "dual-%d IN AAAA 2001:db8:ffff::%x\n", i, i
	}
}' >"$W/bench.test.zone"

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
	# unbound answers the RFC 6761 name "test." itself (NXDOMAIN from a
	# built-in local zone) unless told not to; without this line it never
	# forwards, let alone synthesizes, and the comparison is meaningless.
	local-zone: "test." nodefault
forward-zone:
	name: "bench.test."
	forward-addr: 127.0.0.1@$UP_PORT
CONF

# Query files.
awk -v w="$W" 'BEGIN {
	for (i = 0; i < 1000; i++) {
		# All cache hits, no synthesis: A and AAAA of dual-stack names.
		printf "dual-%d.bench.test AAAA\ndual-%d.bench.test A\n", i, i >w "/hits.txt"
		# Half of the answers synthesized.
		printf "v4-%d.bench.test AAAA\ndual-%d.bench.test AAAA\n", i, i >w "/synth50.txt"
	}
	for (i = 0; i < 10000; i++) printf "v4-%d.bench.test A\n", i >w "/fill10k.txt"
}'

if [ -n "${DNS64D:-}" ]; then
	cp "$DNS64D" "$W/dns64d" # a dns64d built from another revision, to compare
else
	go build -o "$W/dns64d" ./services/dns64/bench/dns64d
fi
go build -o "$W/dnsflood" ./services/dns64/bench/dnsflood

named -g -n 1 -c "$W/named.conf" >"$W/named.log" 2>&1 & PIDS="$PIDS $!"
unbound -d -c "$W/unbound.conf" >"$W/unbound.log" 2>&1 & UNBOUND_PID=$!
PIDS="$PIDS $UNBOUND_PID"
# No flag but the addresses: every other setting is the daemon's default
# (GOMAXPROCS UDP sockets, the default cache).
GOMAXPROCS=$THREADS "$W/dns64d" -listen 127.0.0.1:$GIZMO_PORT -upstream 127.0.0.1:$UP_PORT \
	-pref64 2001:db8:64::/96 >"$W/dns64d.out" 2>&1 & GIZMO_PID=$!
PIDS="$PIDS $GIZMO_PID"
sleep 2

# Both servers must give the answers the workloads are about before they are
# measured: a synthesized AAAA for an IPv4-only name, the real AAAA for a
# dual-stack one.
check() { # port name expected-address
	got=$(dig +short +tries=1 +time=2 -p "$1" @127.0.0.1 "$2" AAAA)
	[ "$got" = "$3" ] || { echo "run.sh: port $1 answers $2 AAAA with '$got', want $3" >&2; exit 1; }
}
for port in $UNBOUND_PORT $GIZMO_PORT; do
	check $port v4-1.bench.test 2001:db8:64::c633:6401
	check $port dual-1.bench.test 2001:db8:ffff::1
done

# cpu: a process's user+system CPU time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
# qps: saturate for DURATION seconds; prints "qps mean-latency-us
# server-cpu-us-per-query". CPU time per query does not depend on how much
# of the machine the server got, so it is the steadier number on a busy VM.
qps() { # port file pid
	c0=$(cpu "$3")
	out=$(dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 8 -q 100 -T 1 2>&1)
	c1=$(cpu "$3")
	echo "$out" | awk -v c="$((c1 - c0))" -v tick="$TICK" '/Queries completed/ {n=$3} /Queries per second/ {q=$4} /Average Latency/ {l=$4}
		END {printf "%.0f %.0f %.2f\n", q, l*1e6, c / tick * 1e6 / n}'
}
# lat: a fixed load of RATE qps, every query's latency from dnsperf -v;
# prints "p50-us p99-us".
lat() { # port file
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 8 -q 100 -T 1 -Q "$RATE" -v 2>/dev/null |
		awk '$1 == ">" {print $NF * 1e6}' | sort -n |
		awk '{v[NR]=$1} END {printf "%.0f %.0f\n", v[int(NR*0.5)], v[int(NR*0.99)]}'
}
# satlat: saturate again, as qps does, but keep every query's latency;
# prints "p50-us p99-us" (a separate run: printing each query costs dnsperf
# CPU, which would lower the qps it measures).
satlat() { # port file
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 8 -q 100 -T 1 -v 2>/dev/null |
		awk '$1 == ">" {print $NF * 1e6}' | sort -n |
		awk '{v[NR]=$1} END {printf "%.0f %.0f\n", v[int(NR*0.5)], v[int(NR*0.99)]}'
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS"
echo "# $DURATION s per run, $ROUNDS rounds alternating unbound and dns64d, medians; latency at $RATE qps"
echo "# unbound $(unbound -V | awk '/^Version/ {print $2}'), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
for wl in hits synth50; do
	# Warm both caches.
	dnsperf -s 127.0.0.1 -p $UNBOUND_PORT -d "$W/$wl.txt" -n 2 >/dev/null 2>&1
	dnsperf -s 127.0.0.1 -p $GIZMO_PORT -d "$W/$wl.txt" -n 2 >/dev/null 2>&1
	: >"$W/u.qps"; : >"$W/g.qps"; : >"$W/u.lat"; : >"$W/g.lat"; : >"$W/u.sat"; : >"$W/g.sat"
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		qps $UNBOUND_PORT "$W/$wl.txt" $UNBOUND_PID >>"$W/u.qps"
		qps $GIZMO_PORT "$W/$wl.txt" $GIZMO_PID >>"$W/g.qps"
		lat $UNBOUND_PORT "$W/$wl.txt" >>"$W/u.lat"
		lat $GIZMO_PORT "$W/$wl.txt" >>"$W/g.lat"
		if [ -n "${SATLAT:-}" ]; then
			satlat $UNBOUND_PORT "$W/$wl.txt" >>"$W/u.sat"
			satlat $GIZMO_PORT "$W/$wl.txt" >>"$W/g.sat"
		fi
		r=$((r + 1))
	done
	uq=$(cut -d' ' -f1 "$W/u.qps" | median); gq=$(cut -d' ' -f1 "$W/g.qps" | median)
	u50=$(cut -d' ' -f1 "$W/u.lat" | median); g50=$(cut -d' ' -f1 "$W/g.lat" | median)
	u99=$(cut -d' ' -f2 "$W/u.lat" | median); g99=$(cut -d' ' -f2 "$W/g.lat" | median)
	echo "## workload $wl"
	echo "rounds unbound qps: $(cut -d' ' -f1 "$W/u.qps" | tr '\n' ' ') dns64d qps: $(cut -d' ' -f1 "$W/g.qps" | tr '\n' ' ')"
	echo "rounds unbound p99 us: $(cut -d' ' -f2 "$W/u.lat" | tr '\n' ' ') dns64d p99 us: $(cut -d' ' -f2 "$W/g.lat" | tr '\n' ' ')"
	uc=$(cut -d' ' -f3 "$W/u.qps" | median); gc=$(cut -d' ' -f3 "$W/g.qps" | median)
	echo "rounds unbound cpu us/query: $(cut -d' ' -f3 "$W/u.qps" | tr '\n' ' ') dns64d cpu us/query: $(cut -d' ' -f3 "$W/g.qps" | tr '\n' ' ')"
	echo "qps: unbound $uq, dns64d $gq, ratio $(awk "BEGIN {printf \"%.2f\", $gq / $uq}") (goal >= 1.0, one client)"
	echo "cpu us/query: unbound $uc, dns64d $gc, ratio $(awk "BEGIN {printf \"%.2f\", $gc / $uc}")"
	echo "p50 us: unbound $u50, dns64d $g50; p99 us: unbound $u99, dns64d $g99, ratio $(awk "BEGIN {printf \"%.2f\", $g99 / $u99}")"
	if [ -n "${SATLAT:-}" ]; then
		us99=$(cut -d' ' -f2 "$W/u.sat" | median); gs99=$(cut -d' ' -f2 "$W/g.sat" | median)
		echo "rounds saturated unbound p99 us: $(cut -d' ' -f2 "$W/u.sat" | tr '\n' ' ') dns64d p99 us: $(cut -d' ' -f2 "$W/g.sat" | tr '\n' ' ')"
		echo "saturated p50 us: unbound $(cut -d' ' -f1 "$W/u.sat" | median), dns64d $(cut -d' ' -f1 "$W/g.sat" | median); p99 us: unbound $us99, dns64d $gs99, ratio $(awk "BEGIN {printf \"%.2f\", $gs99 / $us99}")"
	fi
done

# fair: while dnsflood floods port $1 from 127.0.0.2 at full speed (4
# sockets, so that it reaches every SO_REUSEPORT socket; one core, as one
# host's CPU; all cache hits, the answers a server can give fastest),
# dnsperf asks at FAIRQPS from 127.0.0.3 with a 1 s timeout. Prints
# "normal-sent normal-answered flood-sent flood-answered kernel-drops",
# the last the machine's UDP receive buffer errors meanwhile (/proc/net/snmp).
rcvbuf() { awk '/^Udp:/ {getline; print $6}' /proc/net/snmp; }
fair() { # port
	k0=$(rcvbuf)
	GOMAXPROCS=1 "$W/dnsflood" -server 127.0.0.1:"$1" -from 127.0.0.2 -d "$W/hits.txt" -l $((DURATION + 2)) >"$W/flood.out" &
	fpid=$!
	sleep 1
	out=$(dnsperf -s 127.0.0.1 -p "$1" -a 127.0.0.3 -d "$W/synth50.txt" -l "$DURATION" -c 1 -q 100 -Q "$FAIRQPS" -t 1 2>&1)
	wait $fpid
	echo "$out" | awk '/Queries sent/ {s=$3} /Queries completed/ {c=$3} END {printf "%d %d ", s, c}'
	sed 's/sent=\([0-9]*\) answered=\([0-9]*\).*/\1 \2/' "$W/flood.out" | tr '\n' ' '
	echo $(($(rcvbuf) - k0))
}
FAIRQPS=${FAIRQPS:-200}
: >"$W/u.fair"; : >"$W/g.fair"
r=0
while [ $r -lt "$ROUNDS" ]; do
	fair $UNBOUND_PORT >>"$W/u.fair"
	fair $GIZMO_PORT >>"$W/g.fair"
	r=$((r + 1))
done
pct() { awk '{printf "%.1f ", $1 ? 100 * $2 / $1 : 0}' "$1"; }
echo "## fairness: one host floods (dnsflood), another asks $FAIRQPS qps (dnsperf -t 1)"
echo "rounds unbound normal answered %: $(pct "$W/u.fair") dns64d: $(pct "$W/g.fair")"
echo "rounds flood answered qps unbound: $(awk -v d=$((DURATION + 2)) '{printf "%.0f ", $4 / d}' "$W/u.fair") dns64d: $(awk -v d=$((DURATION + 2)) '{printf "%.0f ", $4 / d}' "$W/g.fair")"
echo "rounds flood sent qps unbound: $(awk -v d=$((DURATION + 2)) '{printf "%.0f ", $3 / d}' "$W/u.fair") dns64d: $(awk -v d=$((DURATION + 2)) '{printf "%.0f ", $3 / d}' "$W/g.fair")"
echo "rounds kernel receive buffer drops unbound: $(cut -d' ' -f5 "$W/u.fair" | tr '\n' ' ') dns64d: $(cut -d' ' -f5 "$W/g.fair" | tr '\n' ' ')"
echo "normal answered within 1 s (median): unbound $(pct "$W/u.fair" | tr ' ' '\n' | grep . | median) %, dns64d $(pct "$W/g.fair" | tr ' ' '\n' | grep . | median) % (goal >= 95 %)"
kill -USR1 $GIZMO_PID; sleep 1
echo "dns64d fairness drops: $(tail -1 "$W/dns64d.out" | sed 's/.*"Fairness":\({[^}]*}\).*/\1/')"

echo "## memory"
# Twice: the first pass fills the cache, the second (all hits) the memo of
# packed answers too, so that RSS includes both at their fullest.
dnsperf -s 127.0.0.1 -p $GIZMO_PORT -d "$W/fill10k.txt" -n 2 >/dev/null 2>&1
kill -USR1 $GIZMO_PID; sleep 1
echo "dns64d cache entries: $(tail -1 "$W/dns64d.out" | sed 's/.*"CacheEntries":\([0-9]*\).*/\1/'), memo entries: $(tail -1 "$W/dns64d.out" | sed 's/.*"MemoEntries":\([0-9]*\).*/\1/')"
echo "dns64d RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$GIZMO_PID/status)"
dnsperf -s 127.0.0.1 -p $UNBOUND_PORT -d "$W/fill10k.txt" -n 2 >/dev/null 2>&1
echo "unbound RSS after the same queries: $(awk '/VmRSS/ {print $2, $3}' /proc/$UNBOUND_PID/status)"
