# criu-vm: the criu core service for real (issue 7), in one qemu boot of Debian 12's kernel.
# timeout: 230
#
# The host runs the site (slapd, gca-gcs; gca-site also starts its two host CTSes); the guest is a
# computing resource of that site: its gca-cts (core service criu) reaches the GCS at 10.0.2.2, and
# the GCS reaches it through qemu's hostfwd. Host and guest take turns through files in the 9p share
# (every wait bounded): the guest starts the job under gca-exec; the host (the broker) checkpoints
# it twice with gca-ctl; the guest kills it and brings it back with gca-recover, from the latest
# checkpoint and then from the first; then the figures of bench/criu-vm.json (plain criu dump vs
# gca-ctl checkpoint at 16 and 256 MiB).
. "$GCA_TOP/tests/lib.sh"
. "$GCA_TOP/tests/vm/lab.sh"

S=criu-vm
CRIU_CTS_MORE="retention 10"
. "$GCA_TOP/tests/vm/criu_site.sh"

# ---- what the guest runs (busybox sh, in its own session) ----
cat > "$share/scenario" <<'GUEST'
S=/mnt/share
up() { cut -d' ' -f1 /proc/uptime; }
# gwait SECONDS FILE: the host's answer, bounded
gwait() { i=0; while [ ! -e "$2" ]; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "gave up waiting for $2"; return 1; }; sleep 0.1; done; }
# logwait SECONDS FILE PATTERN
logwait() { i=0; until grep -q "$3" "$2" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "no '$3' in $2"; return 1; }; sleep 0.1; done; }
export GCA_CTS_SOCKET=/run/cts-vm.sock
echo "guest: $(uname -r), $(criu --version | head -1)"
criu check > $S/criu-check.out 2>&1; echo $? > $S/criu-check.rc
t0=$(up)
gca-cts -f $S/cts-vm.conf --port-file /tmp/cts.port >> $S/cts-vm.log 2>&1 &
cts=$!
i=0; until [ -S /run/cts-vm.sock ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
echo "cts up after $(awk -v a=$t0 -v b=$(up) 'BEGIN { print b - a }') s"

# 1. the job under gca-exec (stdout/err appended: criu checks the size of other files it reopens)
gca-exec --gid vm-job -- job --log $S/job.log --tick 100 --mib 4 </dev/null >>$S/job.out 2>&1 &
jobpid=$!
logwait 30 $S/job.log ready && echo $jobpid > $S/job.started
# 2. the host checkpoints it twice; then it dies
gwait 120 $S/go.kill || exit 1
kill -9 $jobpid; wait $jobpid 2>/dev/null
echo "mark killed" >> $S/job.log
# 3. back from the latest checkpoint; a SIGTERM to gca-recover reaches it, its status comes back
t=$(up)
gca-recover --gid vm-job --checkpoint latest -- job --log $S/job.log </dev/null >>$S/recover1.out 2>&1 &
rpid=$!
logwait 30 $S/job.log 'mark killed' && sleep 0
# the restored job's first line after the mark
i=0; until awk 'f && /^counter/ { found = 1 } /^mark killed/ { f = 1 } END { exit !found }' $S/job.log; do
	i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
echo "restore 1: first line after $(awk -v a=$t -v b=$(up) 'BEGIN { print b - a }') s"
sleep 1
kill -TERM $rpid; wait $rpid; echo $? > $S/recover1.rc
echo "mark recover2" >> $S/job.log
# 4. back from the first checkpoint, ended by SIGUSR1 (exit 4) this time
gca-recover --gid vm-job --checkpoint "$(cat $S/ckpt1.id)" -- job --log $S/job.log </dev/null >>$S/recover2.out 2>&1 &
rpid=$!
i=0; until awk 'f && /^counter/ { found = 1 } /^mark recover2/ { f = 1 } END { exit !found }' $S/job.log; do
	i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
sleep 1
kill -USR1 $rpid; wait $rpid; echo $? > $S/recover2.rc
echo "mark end" >> $S/job.log
touch $S/recovered

# 5. figures: plain criu dump here, gca-ctl checkpoint from the host, same job, same boot
for mib in 16 256; do
	gca-exec --gid bench-$mib -- job --log $S/bench-$mib.log --tick 200 --mib $mib </dev/null >>$S/job.out 2>&1 &
	bpid=$!
	logwait 60 $S/bench-$mib.log ready || break
	rss=$(awk '/VmRSS/ { print $2 }' /proc/$bpid/status)
	mkdir -p /tmp/plain-$mib
	t=$(up)
	criu dump --leave-running -t $bpid -D /tmp/plain-$mib -o dump.log > /dev/null 2>&1; rc=$?
	secs=$(awk -v a=$t -v b=$(up) 'BEGIN { print b - a }')
	echo "plain $mib $rc $secs $rss" > $S/bench-$mib.plain.tmp && mv $S/bench-$mib.plain.tmp $S/bench-$mib.plain  # whole, never seen half-written
	rm -rf /tmp/plain-$mib
	gwait 120 $S/bench-$mib.done
	kill -9 $bpid; wait $bpid 2>/dev/null
	rm -rf /tmp/cts-vm/images/bench-$mib 2>/dev/null
done
touch $S/bench.done
kill $cts; wait $cts
echo "guest: done"
GUEST

# ---- boot once ----
t_boot=$(date +%s.%N)
lab_boot "$share" "$T/console.log" "$fwd:7000"
if lab_wait_file 60 "$share/criu-check.rc"; then
	pass "the guest booted and mounted the share ($(since "$t_boot") s)"
else
	fail "the guest booted and mounted the share" "$(grep -ao 'lab:.*' "$T/console.log" | tail -5)"
	exit 1
fi
expect_eq "criu check passes in the guest" "$(cat "$share/criu-check.rc")" 0

# The guest's CTS registers with the host's GCS and the job binds.
if wait_for 60 test -e "$share/job.started"; then pass "the guest's gca-exec started the job"
else fail "the guest's gca-exec started the job" "$(tail -3 "$share/job.out" "$share/cts-vm.log" 2>/dev/null)"; fi
st=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "cn=cts-vm,ou=cts,$GCA_BASE_DN" -s base gcaStatus 2>/dev/null | awk '/^gcaStatus:/ { print $2 }')
expect_eq "the guest's CTS cts-vm is published ok (ldapsearch)" "$st" ok
check "gca-ctl jobs shows vm-job on cts-vm" bash -c "gca-ctl jobs | grep vm-job | grep -q cts-vm"

# The broker checkpoints twice; the counter before and after each bounds the dump point.
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$share/job.log"; }
ckpt() {
	local i=$1 lo hi id t
	lo=$(last); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint vm-job 2>"$T/ckpt$i.err" | awk '$1 == "checkpoint" { print $2; exit }')
	hi=$(last)
	echo "$lo $hi" > "$T/ckpt$i.range"
	if [ -n "$id" ]; then
		pass "gca-ctl checkpoint vm-job #$i: $id (counter $lo..$hi, $(since "$t") s)"
		echo "$id" > "$share/ckpt$i.id.tmp" && mv "$share/ckpt$i.id.tmp" "$share/ckpt$i.id"
	else
		fail "gca-ctl checkpoint vm-job #$i" "$(cat "$T/ckpt$i.err")"
	fi
}
sleep 1
ckpt 1
sleep 2
ckpt 2
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vm-job)(gcaCoreService=criu))" gcaCheckpointId 2>/dev/null |
	grep -c '^gcaCheckpointId:')
expect_eq "two criu records of vm-job in the directory (ldapsearch)" "$recs" 2
# What a restore must match, on the records and on the CTS, as a broker looks for it (item 5).
want="(gcaProperty=criu=*)(gcaProperty=kernel=$LAB_KREL)(gcaProperty=cpu.xfeatures=0x*)(gcaProperty=cpu.fpu=*)"
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vm-job)$want)" gcaCheckpointId 2>/dev/null |
	grep -c '^gcaCheckpointId:')
expect_eq "both records name criu's version, kernel $LAB_KREL and the CPU's FPU features" "$recs" 2
ctsm=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=cts,$GCA_BASE_DN" \
	"(&(cn=cts-vm)$want)" gcaProperty 2>/dev/null | grep '^gcaProperty: cpu.xfeatures=')
expect_eq "the CTS entry cts-vm names the same (${ctsm#gcaProperty: })" "${ctsm:+yes}" yes
sleep 1
touch "$share/go.kill"

# ---- what the job's own log says ----
if lab_wait_file 90 "$share/recovered"; then pass "the guest killed the job and recovered it twice"
else fail "the guest killed the job and recovered it twice" "$(tail -5 "$share/scenario.log" "$share"/recover*.out 2>/dev/null)"; fi
log=$share/job.log
killed=$(awk '/^mark killed/ { print n; exit } $1 == "counter" { n = $2 }' "$log")
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark recover2/ { f = 1 }' "$log")
read -r lo1 hi1 < "$T/ckpt1.range" 2>/dev/null || lo1=-1 hi1=-1
read -r lo2 hi2 < "$T/ckpt2.range" 2>/dev/null || lo2=-1 hi2=-1
in_range() { [ -n "$1" ] && [ "$1" -ge $(($2 + 1)) ] && [ "$1" -le $(($3 + 1)) ]; }
if in_range "$r1" "$lo2" "$hi2" && [ "$r1" -le "${killed:-0}" ]; then
	pass "restored from the latest checkpoint: resumed at counter $r1 (dumped at $lo2..$hi2, killed at $killed)"
else
	fail "restored from the latest checkpoint: resumed where it was dumped" "first counter $r1, dump window $lo2..$hi2, killed at $killed; $(tail -3 "$share/recover1.out")"
fi
expect_eq "SIGTERM to gca-recover reached the job; its exit status 3 came back" "$(cat "$share/recover1.rc" 2>/dev/null)" 3
check "the restored job said where it stopped" grep -q '^stopped at' "$log"
if in_range "$r2" "$lo1" "$hi1"; then
	pass "restored from the first checkpoint id: resumed at counter $r2 (dumped at $lo1..$hi1)"
else
	fail "restored from the first checkpoint id" "first counter $r2, dump window $lo1..$hi1; $(tail -3 "$share/recover2.out")"
fi
expect_eq "SIGUSR1 to gca-recover reached the job; its exit status 4 came back" "$(cat "$share/recover2.rc" 2>/dev/null)" 4
bad=$(grep -c 'heap bad' "$log")
expect_eq "the heap pattern survived every dump and restore" "$bad" 0

# ---- figures: plain criu dump (guest) vs gca-ctl checkpoint (host broker) ----
# figures go to the build folder; make test-criu (GCA_FIGURES_DIR=bench) records them in bench/
bench_json=${GCA_FIGURES_DIR:-$GCA_BUILD/bench}/criu-vm.json
rows=()
for mib in 16 256; do
	if ! lab_wait_file 120 "$share/bench-$mib.plain"; then
		fail "bench $mib MiB: the guest's plain criu dump" "$(tail -3 "$share/scenario.log")"
		break
	fi
	read -r _ _ prc psecs rss < "$share/bench-$mib.plain"
	t=$(date +%s.%N)
	gca-ctl checkpoint "bench-$mib" >"$T/bench-$mib.out" 2>&1; grc=$?
	gsecs=$(since "$t")
	touch "$share/bench-$mib.done"
	if [ "$prc" = 0 ] && [ $grc = 0 ]; then
		ratio=$(awk -v g="$gsecs" -v p="$psecs" 'BEGIN { printf "%.1f", (p > 0) ? g / p : 0 }')
		pass "bench $mib MiB (rss $((rss / 1024)) MiB): criu dump ${psecs} s, gca-ctl checkpoint ${gsecs} s, ratio $ratio"
		rows+=("{\"mib\": $mib, \"rss_kib\": $rss, \"criu_dump_s\": $psecs, \"gca_ctl_checkpoint_s\": $gsecs, \"ratio\": $ratio}")
	else
		fail "bench $mib MiB" "criu dump rc $prc, gca-ctl rc $grc: $(tail -2 "$T/bench-$mib.out")"
	fi
done
if [ ${#rows[@]} -eq 2 ]; then
	mkdir -p "$(dirname "$bench_json")"
	{
		echo "{"
		echo "  \"what\": \"plain criu dump --leave-running (timed in the guest) vs gca-ctl checkpoint (timed by the host broker) of the same job, same boot\","
		echo "  \"guest\": \"qemu $LAB_ACCEL, $LAB_MEM MiB, kernel $LAB_KREL\","
		echo "  \"criu\": \"$(criu --version | awk '/Version/ { print $2 }')\","
		echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
		echo "  \"runs\": [${rows[0]}, ${rows[1]}]"
		echo "}"
	} > "$bench_json"
	pass "figures written to ${bench_json#"$GCA_TOP"/}"
fi

# ---- the end ----
if lab_wait 60; then pass "the guest powered off"; else fail "the guest powered off"; fi
sed 's/^/# guest: /' "$share/scenario.log"
echo "# suite wall time $(since "$suite_t0") s"
done_testing
