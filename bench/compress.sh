#!/usr/bin/env bash
# bench/compress.sh: issue 22 item 6, image compression (cts.conf `compress zstd [LEVEL]`): image
# size and checkpoint time with and without, for an app job and (where criu works: the Debian 13
# root) a criu job. Not part of `make bench` (its budget is 300 s for the directory's figures):
#
#   bench/compress.sh                                       (app only where criu cannot run)
#   scripts/gca-debian13 enter bash -c 'cd /root/gca && make -j2 all && bench/compress.sh'
#
# BENCH_MIB (256): the job's state, half incompressible, half text. app: examples/counter --pad
# MIB MiB --pad-text (its image holds the pad: xorshift bytes, then a line of text repeated);
# criu: tests/vm/guest/job.c --mib MIB/2 --text-mib MIB/2 (a 64-bit pattern zstd cannot shrink,
# then text), every page written, in a PID namespace of its own. BENCH_SETTINGS ("no 1 3"): "no"
# or a zstd level; one site (gca-site up, GCA_SITE_CTS_EXTRA="compress zstd LEVEL") each, on disk
# (TMPDIR, default /var/tmp). BENCH_ROUNDS (5) `gca-ctl checkpoint`s of each job, each timed from
# fork to exit; the image's stored bytes (the sum of its manifest's sizes, what the record's size
# says) and raw bytes (zstd lines' raw sizes). Medians. Run as root. Prints one table; writes
# build/bench/compress.json.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export GCA_TOP=$top GCA_BUILD=$top/build PATH=$top/build:$top/scripts:$PATH
rounds=${BENCH_ROUNDS:-5}
mib=${BENCH_MIB:-256}
read -r -a settings <<<"${BENCH_SETTINGS:-no 1 3}"
[ "$(id -u)" = 0 ] || { echo "compress: run as root" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/gca-zbench.XXXXXX")
chmod 0755 "$T"
site=
cleanup() {
	[ -n "${jobpid:-}" ] && kill "$jobpid" 2>/dev/null
	[ -n "$site" ] && gca-site down "$site" >/dev/null 2>&1
	[ -n "${BENCH_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
waitfor() { local i; for ((i = 0; i < 600; i++)); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

cores=(app)
if command -v criu >/dev/null && criu check >/dev/null 2>&1 </dev/null; then
	cores+=(criu)
	cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$T/job" "$top/tests/vm/guest/job.c" || exit 1
else
	echo "# criu: not measured here (criu check fails or criu is missing: run it in the Debian 13 root)"
fi
json_rows=()
printf '%s\n' "# compress: $mib MiB of state (half incompressible, half text), commit ${GCA_COMMIT:-$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo ?)}, load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds, medians"
printf '%-5s %-8s %-10s %-10s %-7s %-9s %s\n' core setting stored_MiB raw_MiB ratio ckpt_s rounds_s
for s in "${settings[@]}"; do
	extra= label=no
	[ "$s" = no ] || extra="compress zstd $s" label="zstd $s"
	site=$T/site-$s
	GCA_SITE_HEARTBEAT=2 GCA_SITE_CTS_EXTRA=$extra gca-site up "$site" >"$T/site-$s.log" 2>&1 ||
		{ cat "$T/site-$s.log"; exit 1; }
	. "$site/site.env"
	for core in "${cores[@]}"; do
		gid=z-$core-$s-$$ log=$T/$core-$s.log
		if [ "$core" = app ]; then
			GCA_CTS_SOCKET=$site/run/cts-app.sock gca-exec --gid "$gid" -- "$GCA_BUILD/examples/counter" \
			    --log "$log" --tick 200 --pad $((mib * 1048576)) --pad-text </dev/null >>"$T/job.out" 2>&1 &
			ready=counter
		else
			GCA_CTS_SOCKET=$site/run/cts-criu.sock setsid gca-exec --gid "$gid" -- "$T/job" --log "$log" \
			    --tick 200 --mib $((mib / 2)) --text-mib $((mib / 2)) </dev/null >>"$T/job.out" 2>&1 &
			ready=ready
		fi
		jobpid=$!
		waitfor "$log" "$ready" || { echo "compress: job $gid not ready"; tail "$T/job.out"; exit 1; }
		: >"$T/t"; : >"$T/stored"; : >"$T/raw"
		for ((r = 1; r <= rounds; r++)); do
			t=$(now)
			gca-ctl checkpoint "$gid" >"$T/ctl.out" 2>&1 ||
				{ echo "compress: gca-ctl checkpoint failed:"; cat "$T/ctl.out"; tail -5 "$site/log/cts-$core.log"; exit 1; }
			since "$t" >>"$T/t"
			id=$(awk '$1 == "checkpoint" { print $2; exit }' "$T/ctl.out")
			m=$(ls -d "$site"/cts/cts-$core/images/*/"$id" 2>/dev/null | head -1)/manifest
			# file <sha> <size> <path> | zstd <sha> <size> <raw> <path>
			awk '$1 == "file" { s += $3; r += $3 } $1 == "zstd" { s += $3; r += $4 }
			    END { printf "%.1f %.1f\n", s / 1048576, r / 1048576 }' "$m" >"$T/sizes"
			cut -d' ' -f1 "$T/sizes" >>"$T/stored"; cut -d' ' -f2 "$T/sizes" >>"$T/raw"
			# keep the store from filling the disk: the image is measured, its bytes not needed
			rm -rf "$(dirname "$m")"
		done
		st=$(median <"$T/stored"); rw=$(median <"$T/raw"); ck=$(median <"$T/t")
		ratio=$(awk -v a="$st" -v b="$rw" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
		printf '%-5s %-8s %-10s %-10s %-7s %-9s %s\n' "$core" "$label" "$st" "$rw" "$ratio" "$ck" "$(tr '\n' ' ' <"$T/t")"
		json_rows+=("{\"core\": \"$core\", \"setting\": \"$s\", \"stored_mib\": $st, \"raw_mib\": $rw, \"ratio\": $ratio, \"checkpoint_s\": $ck}")
		if [ "$core" = criu ]; then
			kill -9 "$(awk '{ print $1 }' "/proc/$jobpid/task/$jobpid/children")" 2>/dev/null
		else
			kill "$jobpid" 2>/dev/null
		fi
		wait "$jobpid" 2>/dev/null; jobpid=
	done
	gca-site down "$site" >/dev/null 2>&1; site=
done
out=$top/build/bench/compress.json
mkdir -p "$(dirname "$out")"
{
	echo "{"
	echo "  \"what\": \"gca-ctl checkpoint of a job with $mib MiB of state, half incompressible, half text: image size and time, compress no / zstd LEVEL, medians of $rounds rounds\","
	echo "  \"date\": \"$(date -u +%FT%TZ)\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
	echo "  \"runs\": [$(IFS=,; echo "${json_rows[*]}")]"
	echo "}"
} >"$out"
echo "# figures: ${out#"$top"/}"
