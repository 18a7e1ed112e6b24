#!/usr/bin/env bash
# bench/criu-native.sh: issue 22's target 2, criu natively (CRIU 4.1 in the Debian 13 root).
#
#   scripts/gca-debian13 enter bash -c 'cd /root/gca && make -j2 all && bench/criu-native.sh'
#   bench/criu-native.sh [MIB...]          (default 16 256 1024; BENCH_ROUNDS, default 5)
#
# One site (gca-site up) on disk (TMPDIR, default /var/tmp: /tmp is a tmpfs in the root, where
# fsync costs nothing). For each size, a job (tests/vm/guest/job.c --mib N, every page written)
# under gca-exec in a PID namespace of its own; then BENCH_ROUNDS rounds, each in turn:
#   raw:  `criu dump` of the same tree with the very options the CTS passes (cts/core/criu.c:
#         --leave-running -o dump.log -v4 --display-stats --cpu-cap=fpu), timed, then an fsync of
#         every file it wrote and of the folder (python's os.fsync), timed apart;
#   gca:  `gca-ctl checkpoint GID`, a new process, timed from fork to exit, with the CTS's own
#         split from its log (criu's dump, hashing and sealing, criu's freeze).
# Medians of the rounds, and the ratio gca / (raw dump + fsync) of the medians (target: <= 1.10).
# Run as root (criu dumps root's jobs). Prints one table; writes build/bench/criu-native.json.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export GCA_TOP=$top GCA_BUILD=$top/build PATH=$top/build:$top/scripts:$PATH
rounds=${BENCH_ROUNDS:-5}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16 256 1024)
[ "$(id -u)" = 0 ] || { echo "criu-native: run as root" >&2; exit 1; }
command -v criu >/dev/null || { echo "criu-native: criu is not installed" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/gca-criubench.XXXXXX")
chmod 0755 "$T"
site=$T/site
cleanup() {
	[ -n "${jobpid:-}" ] && kill "$jobpid" 2>/dev/null
	gca-site down "$site" >/dev/null 2>&1
	[ -n "${BENCH_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fsync_tree() {
	python3 -c 'import os, sys
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        fd = os.open(os.path.join(d, f), os.O_RDONLY); os.fsync(fd); os.close(fd)
    fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)' "$1"
}

cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$T/job" "$top/tests/vm/guest/job.c" || exit 1
GCA_SITE_HEARTBEAT=2 gca-site up "$site" >"$T/site.log" 2>&1 || { cat "$T/site.log"; exit 1; }
. "$site/site.env"
export GCA_CTS_SOCKET=$GCA_CTS_SOCKET_CRIU
ctslog=$site/log/cts-criu.log
json_rows=()
printf '%s\n' "# criu-native: $(criu --version | head -1), kernel $(uname -r), commit ${GCA_COMMIT:-$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo ?)}, load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds, medians"
printf '%-6s %-9s %-9s %-9s %-9s %-9s %-9s %-9s %-9s %-7s\n' MiB raw_dump fsync raw+fs gca_ctl cts_dump cts_seal frz_raw frz_gca ratio
for mib in "${sizes[@]}"; do
	gid=bench-$mib-$$
	gca-exec --gid "$gid" -- "$T/job" --log "$T/$gid.log" --tick 200 --mib "$mib" </dev/null >>"$T/job.out" 2>&1 &
	jobpid=$!
	for ((i = 0; i < 600; i++)); do grep -q ready "$T/$gid.log" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$T/$gid.log" 2>/dev/null || { echo "criu-native: job $gid not ready"; tail "$T/job.out"; exit 1; }
	# the tree criu dumps: the job's namespace init (gca-exec's child)
	root=$(awk '{ print $1 }' "/proc/$jobpid/task/$jobpid/children")
	: >"$T/raw.d" ; : >"$T/raw.f" ; : >"$T/gca" ; : >"$T/cdump" ; : >"$T/cseal" ; : >"$T/fraw" ; : >"$T/fgca"
	for ((r = 1; r <= rounds; r++)); do
		d=$T/raw-$mib-$r
		mkdir "$d"
		t=$(now)
		if ! criu dump --leave-running -t "$root" -D "$d" -o dump.log -v4 --display-stats \
		    --cpu-cap=fpu >"$d.stats" 2>&1; then
			echo "criu-native: raw criu dump failed:"; tail -5 "$d/dump.log"; exit 1
		fi
		since "$t" >>"$T/raw.d"
		t=$(now)
		fsync_tree "$d"
		since "$t" >>"$T/raw.f"
		awk '/Frozen time:/ { printf "%.3f\n", $3 / 1e6 }' "$d.stats" >>"$T/fraw"
		[ -n "${BENCH_KEEP:-}" ] || rm -rf "$d"
		lines=$(wc -l <"$ctslog")
		t=$(now)
		gca-ctl checkpoint "$gid" >"$T/ctl.out" 2>&1 || { echo "criu-native: gca-ctl checkpoint failed:"; cat "$T/ctl.out"; tail -5 "$ctslog"; exit 1; }
		since "$t" >>"$T/gca"
		read -r cd_ cs fz < <(tail -n +"$((lines + 1))" "$ctslog" | awk -v g="of $gid:" '
			index($0, g) && /hashed and sealed/ { for (i = 1; i <= NF; i++) { if ($i == "pid") d = $(i + 2); if ($i == "sealed") h = $(i + 1) } }
			index($0, g) && /criu froze the job/ { for (i = 1; i <= NF; i++) if ($i == "job") f = $(i + 1) / 1000 }
			END { printf "%s %s %.3f\n", d, h, f }')
		echo "$cd_" >>"$T/cdump"; echo "$cs" >>"$T/cseal"; echo "$fz" >>"$T/fgca"
		# keep the store from filling the disk: the image is proven, its bytes not needed
		rm -rf "$site"/cts/cts-criu/images/"$gid"/* 2>/dev/null
	done
	rd=$(median <"$T/raw.d"); rf=$(median <"$T/raw.f"); g=$(median <"$T/gca")
	cd_=$(median <"$T/cdump"); cs=$(median <"$T/cseal"); fr=$(median <"$T/fraw"); fg=$(median <"$T/fgca")
	rfs=$(paste "$T/raw.d" "$T/raw.f" | awk '{ printf "%.3f\n", $1 + $2 }' | median)
	ratio=$(awk -v g="$g" -v b="$rfs" 'BEGIN { printf "%.2f", (b > 0) ? g / b : 0 }')
	printf '%-6s %-9s %-9s %-9s %-9s %-9s %-9s %-9s %-9s %-7s\n' "$mib" "$rd" "$rf" "$rfs" "$g" "$cd_" "$cs" "$fr" "$fg" "$ratio"
	echo "#   gca_ctl rounds: $(tr '\n' ' ' <"$T/gca")| raw+fsync rounds: $(paste "$T/raw.d" "$T/raw.f" | awk '{ printf "%.3f\n", $1 + $2 }' | tr '\n' ' ')"
	json_rows+=("{\"mib\": $mib, \"raw_dump_s\": $rd, \"raw_fsync_s\": $rf, \"raw_dump_fsync_s\": $rfs, \"gca_ctl_checkpoint_s\": $g, \"cts_dump_s\": $cd_, \"cts_hash_seal_s\": $cs, \"frozen_raw_s\": $fr, \"frozen_gca_s\": $fg, \"ratio\": $ratio}")
	kill "$jobpid" 2>/dev/null; wait "$jobpid" 2>/dev/null; jobpid=
done
out=$top/build/bench/criu-native.json
mkdir -p "$(dirname "$out")"
{
	echo "{"
	echo "  \"what\": \"raw criu dump (the CTS's options) + fsync of its images vs gca-ctl checkpoint of the same job, medians of $rounds rounds, one run\","
	echo "  \"criu\": \"$(criu --version | head -1)\", \"kernel\": \"$(uname -r)\", \"date\": \"$(date -u +%FT%TZ)\","
	echo "  \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
	echo "  \"runs\": [$(IFS=,; echo "${json_rows[*]}")]"
	echo "}"
} >"$out"
echo "# figures: ${out#"$top"/}"
