# criu-incr-vm: incremental criu images (issue 10 item 4), in one qemu boot of Debian 12's kernel.
# timeout: 200
#
# The same lab as criu.sh (the site on the host, the guest's gca-cts with core service criu), with
# criu_incremental 3 and retention 1 in the guest's cts.conf: the broker checkpoints a job holding
# 32 MiB twice; the second is a --track-mem dump on the first (its record names the parent, its
# image is a fraction of the first), retention keeps the first because the second needs it; the
# guest kills the job and gca-recover brings it back from the second, through the chain.
. "$GCA_TOP/tests/lib.sh"
. "$GCA_TOP/tests/vm/lab.sh"

S=criu-incr-vm
CRIU_CTS_MORE="retention 1
criu_incremental 3"
. "$GCA_TOP/tests/vm/criu_site.sh"

# ---- what the guest runs (busybox sh, in its own session) ----
cat > "$share/scenario" <<'GUEST'
S=/mnt/share
gwait() { i=0; while [ ! -e "$2" ]; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "gave up waiting for $2"; return 1; }; sleep 0.1; done; }
logwait() { i=0; until grep -q "$3" "$2" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "no '$3' in $2"; return 1; }; sleep 0.1; done; }
export GCA_CTS_SOCKET=/run/cts-vm.sock
echo "guest: $(uname -r), $(criu --version | head -1)"
criu check > $S/criu-check.out 2>&1; echo $? > $S/criu-check.rc
gca-cts -f $S/cts-vm.conf --port-file /tmp/cts.port >> $S/cts-vm.log 2>&1 &
cts=$!
i=0; until [ -S /run/cts-vm.sock ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
gca-exec --gid vm-job -- job --log $S/job.log --tick 100 --mib 32 </dev/null >>$S/job.out 2>&1 &
jobpid=$!
logwait 60 $S/job.log ready && echo $jobpid > $S/job.started
gwait 120 $S/go.kill || exit 1
ls /tmp/cts-vm/images/vm-job > $S/images.ls.tmp; mv $S/images.ls.tmp $S/images.ls
kill -9 $(cat /proc/$jobpid/task/$jobpid/children); wait $jobpid 2>/dev/null	# the job's init: gca-exec stays
echo "mark killed" >> $S/job.log
gca-recover --gid vm-job --checkpoint latest -- job --log $S/job.log </dev/null >>$S/recover1.out 2>&1 &
rpid=$!
i=0; until awk 'f && /^counter/ { found = 1 } /^mark killed/ { f = 1 } END { exit !found }' $S/job.log; do
	i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
sleep 1
kill -TERM $rpid; wait $rpid; echo $? > $S/recover1.rc
ls -l /tmp/cts-vm/images/vm-job/*/parent > $S/links.ls 2>&1
touch $S/recovered
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
if wait_for 60 test -e "$share/job.started"; then pass "the guest's gca-exec started the job"
else fail "the guest's gca-exec started the job" "$(tail -3 "$share/job.out" "$share/cts-vm.log" 2>/dev/null)"; fi

last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$share/job.log"; }
ckpt() {
	local i=$1 lo hi id t
	lo=$(last); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint vm-job 2>"$T/ckpt$i.err" | awk '$1 == "checkpoint" { print $2; exit }')
	hi=$(last)
	echo "$lo $hi" > "$T/ckpt$i.range"
	if [ -n "$id" ]; then
		pass "gca-ctl checkpoint vm-job #$i: $id (counter $lo..$hi, $(since "$t") s)"
		echo "$id" > "$T/ckpt$i.id"
	else
		fail "gca-ctl checkpoint vm-job #$i" "$(cat "$T/ckpt$i.err")"
	fi
}
rec() {	# rec ID ATTR: one attribute of a checkpoint record
	ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
		"(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$1))" "$2" 2>/dev/null | awk -v a="$2:" '$1 == a { print $2 }'
}
sleep 1
ckpt 1
sleep 2
ckpt 2
id1=$(cat "$T/ckpt1.id" 2>/dev/null) id2=$(cat "$T/ckpt2.id" 2>/dev/null)
expect_eq "the first record names no parent (a full dump)" "$(rec "$id1" gcaParentCheckpointId)" ""
expect_eq "the second record names the first as its parent (gcaParentCheckpointId)" "$(rec "$id2" gcaParentCheckpointId)" "$id1"
size1=$(rec "$id1" gcaImageSize) size2=$(rec "$id2" gcaImageSize)
if [ -n "$size1" ] && [ -n "$size2" ] && [ "$size2" -lt $((size1 / 4)) ]; then
	pass "the incremental image is smaller: $size2 bytes against $size1"
else
	fail "the incremental image is smaller" "sizes: first $size1, second $size2"
fi
touch "$share/go.kill"

if lab_wait_file 90 "$share/recovered"; then pass "the guest killed the job and recovered it from the second checkpoint"
else fail "the guest killed the job and recovered it" "$(tail -5 "$share/scenario.log" "$share"/recover*.out 2>/dev/null)"; fi
check "retention 1 kept the first image: the second needs it" grep -qx "$id1" "$share/images.ls"
check "restore_prepare linked the second image to its parent" grep -q "$id2/parent -> ../$id1" "$share/links.ls"
log=$share/job.log
killed=$(awk '/^mark killed/ { print n; exit } $1 == "counter" { n = $2 }' "$log")
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
read -r lo2 hi2 < "$T/ckpt2.range" 2>/dev/null || lo2=-1 hi2=-1
if [ -n "$r1" ] && [ "$r1" -ge $((lo2 + 1)) ] && [ "$r1" -le $((hi2 + 1)) ] && [ "$r1" -le "${killed:-0}" ]; then
	pass "restored from the incremental checkpoint: resumed at counter $r1 (dumped at $lo2..$hi2, killed at $killed)"
else
	fail "restored from the incremental checkpoint: resumed where it was dumped" "first counter $r1, dump window $lo2..$hi2, killed at $killed; $(tail -3 "$share/recover1.out")"
fi
expect_eq "SIGTERM to gca-recover reached the job; its exit status 3 came back" "$(cat "$share/recover1.rc" 2>/dev/null)" 3
expect_eq "the heap pattern survived the chain" "$(grep -c 'heap bad' "$log")" 0

if lab_wait 60; then pass "the guest powered off"; else fail "the guest powered off"; fi
sed 's/^/# guest: /' "$share/scenario.log"
echo "# suite wall time $(since "$suite_t0") s"
done_testing
