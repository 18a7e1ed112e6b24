# criu-vm: the criu core service for real (issue 7), in one qemu boot of Debian 12's kernel.
# timeout: 230
#
# The host runs the site (slapd, gca-gcs; gca-site also starts its two host CTSes); the guest is a
# computing resource of that site: its gca-cts (core service criu) reaches the GCS at 10.0.2.2, and
# the GCS reaches it through qemu's hostfwd. Host and guest take turns through files in the 9p share
# (every wait bounded): the guest starts the job under gca-exec, in a PID namespace of its own,
# and a second one whose stdout is a pipe; the host (the broker) checkpoints the first twice and
# the second once with gca-ctl, checks what the records say a restore must match, and lets the
# guest restore checkpoint 1 with plain criu while its job still runs (two copies, each with pids 1
# and 2: no binding moved, so nothing is fenced); then checkpoint 1 is recovered through the CTS
# (gca-recover) while the job runs, and the CTS stops the original (one live copy); the guest
# brings the job back with gca-recover, from the latest checkpoint and then from
# the first, and the pipe job with its output on gca-recover's own pipe (--inherit-fd); a user
# who is not root is refused by gca-exec and gca-recover, saying why; then the figures of
# bench/criu-vm.json (plain criu dump vs gca-ctl checkpoint at 16 and 256 MiB).
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
# after SECONDS FILE MARK: waits for a counter line after the line MARK
after() { i=0; until awk -v m="$3" 'f && /^counter/ { found = 1 } $0 == m { f = 1 } END { exit !found }' "$2"; do
	i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "no counter after '$3' in $2"; return 1; }; sleep 0.1; done; }
# put FILE TEXT: a file for the host, written whole
put() { echo "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }
child() { awk '{ print $1 }' /proc/$1/task/$1/children 2>/dev/null; }
# nsline PID: "PPID NSPID..." (NSpid: the pid in each namespace, outermost first)
nsline() { awk '/^PPid:/ { pp = $2 } /^NSpid:/ { $1 = ""; ns = substr($0, 2) } END { print pp, ns }' /proc/$1/status; }
export GCA_CTS_SOCKET=/run/cts-vm.sock
echo "guest: $(uname -r), $(criu --version | head -1)"
put $S/guest.criu "$(criu --version | awk '/^Version:/ { print $2 }')"
put $S/guest.kernel "$(uname -r)"
criu check > $S/criu-check.out 2>&1; echo $? > $S/criu-check.rc
t0=$(up)
# Under TCG, OpenSSL's AVX2 sha256 is emulated at about a third of the speed of its plain integer
# code (17-22 s against 4-6 s for 256 MiB, measured here): hashing the image would be 85% of a
# checkpoint for a reason no real CPU has. The guest's CTS uses the integer code (the JSON says so).
export OPENSSL_ia32cap="~0x1000020000000000:~0x20"	# no AVX, SSSE3 (CPUID 1 ECX), AVX2 (7 EBX)
gca-cts -f $S/cts-vm.conf --port-file /tmp/cts.port >> $S/cts-vm.log 2>&1 &
unset OPENSSL_ia32cap
cts=$!
i=0; until [ -S /run/cts-vm.sock ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
echo "cts up after $(awk -v a=$t0 -v b=$(up) 'BEGIN { print b - a }') s"

# 1. the job under gca-exec (stdout/err appended: criu checks the size of other files it reopens),
# in a PID namespace of its own: gca-exec -> the namespace's init (pid 1 there) -> the job (pid 2)
gca-exec --gid vm-job -- job --log $S/job.log --tick 100 --mib 4 </dev/null >>$S/job.out 2>&1 &
jobpid=$!
# and one whose stdout is a pipe (to cat, appending to pipe1.out)
(gca-exec --gid pipe-job -- job --log $S/pipe.log --tick 100 --mib 1 --stdout 1 </dev/null 2>>$S/job.out &
	echo $! > /tmp/pipe.pid; wait) | cat >> $S/pipe1.out &
logwait 30 $S/job.log ready && logwait 30 $S/pipe.log ready
init=$(child $jobpid)
put $S/ns.exec "$jobpid $init $(nsline $init) / $(child $init) $(nsline $(child $init))"
touch $S/job.started
# a user (not root) cannot make a PID namespace: gca-exec says so and the job never runs
echo "user:x:1000:1000:user:/tmp/user:/bin/sh" >> /etc/passwd
echo "user:x:1000:" >> /etc/group
mkdir -p /tmp/user && chown 1000:1000 /tmp/user
su -s /bin/sh user -c "GCA_CTS_SOCKET=$GCA_CTS_SOCKET exec gca-exec --gid user-job -- touch /tmp/user/ran" \
	</dev/null >$S/user.out 2>&1; echo $? > $S/user.rc
[ -e /tmp/user/ran ] && echo ran >> $S/user.out
# 2. the host checkpoints both; then the collision: checkpoint 1 restored by criu itself while the
# job it was dumped from still runs (with the same pids, in its own namespace)
gwait 120 $S/go.kill || exit 1
echo "mark copy" >> $S/job.log
mkdir -p /tmp/copy
criu restore -d -D /tmp/cts-vm/images/vm-job/$(cat $S/ckpt1.id) -W /tmp/copy --pidfile /tmp/copy/pid \
	-o /tmp/copy/restore.log </dev/null >/dev/null 2>&1; echo $? > $S/copy.rc
copy=$(cat /tmp/copy/pid 2>/dev/null)
sleep 1
alive=no; kill -0 $init 2>/dev/null && kill -0 $(child $init) 2>/dev/null && alive=yes
put $S/ns.copy "${copy:-0} $(nsline ${copy:-0}) / $(child ${copy:-0}) $(nsline $(child ${copy:-0})) / original $alive"
tail -3 /tmp/copy/restore.log > $S/copy.log
[ -n "$copy" ] && kill -9 $copy
echo "mark copy end" >> $S/job.log
# 3. one live copy: checkpoint 1 recovered through the CTS (gca-recover) while the job runs; the
# CTS fences the original: SIGTERM to its namespace's init, passed to the job, which says
# "stopped at N" and exits 3, and gca-exec returns that. Then the recovered copy is killed:
# SIGKILL to its init ends the namespace, and gca-recover says 128+9.
echo "mark fence" >> $S/job.log
gca-recover --gid vm-job --checkpoint "$(cat $S/ckpt1.id)" -- job --log $S/job.log </dev/null >>$S/fence.out 2>&1 &
fpid=$!
i=0; while kill -0 $jobpid 2>/dev/null && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
kill -0 $jobpid 2>/dev/null && { echo "not fenced after 30 s" >> $S/fence.out; kill -9 $init; }
wait $jobpid; echo $? > $S/exec.rc
finit=$(child $fpid)
i=0; while [ -z "$finit" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; finit=$(child $fpid); done
sleep 1
grep -a "vm-job" $S/cts-vm.log 2>/dev/null | grep -a -e "stopping its copy" -e "is stopped" > $S/fence.log
alive=no; kill -0 ${finit:-0} 2>/dev/null && alive=yes
echo "$alive" > $S/fence.alive
[ -n "$finit" ] && kill -9 $finit
wait $fpid; echo $? > $S/fence.rc
echo "mark killed" >> $S/job.log
# 4. back from the latest checkpoint; a SIGTERM to gca-recover reaches it, its status comes back
t=$(up)
gca-recover --gid vm-job --checkpoint latest -- job --log $S/job.log </dev/null >>$S/recover1.out 2>&1 &
rpid=$!
after 30 $S/job.log 'mark killed'
echo "restore 1: first line after $(awk -v a=$t -v b=$(up) 'BEGIN { print b - a }') s"
rinit=$(child $rpid)
put $S/ns.recover "$rpid $rinit $(nsline $rinit) / $(child $rinit) $(nsline $(child $rinit))"
sleep 1
kill -TERM $rpid; wait $rpid; echo $? > $S/recover1.rc
echo "mark recover2" >> $S/job.log
# 5. back from the first checkpoint id, ended by SIGUSR1 (exit 4) this time
gca-recover --gid vm-job --checkpoint "$(cat $S/ckpt1.id)" -- job --log $S/job.log </dev/null >>$S/recover2.out 2>&1 &
rpid=$!
after 30 $S/job.log 'mark recover2'
sleep 1
kill -USR1 $rpid; wait $rpid; echo $? > $S/recover2.rc
echo "mark end" >> $S/job.log
# 6. the pipe job killed and recovered with a new pipe for stdout: its output must come out there
pinit=$(child $(cat /tmp/pipe.pid))
kill -9 $pinit
echo "mark killed" >> $S/pipe.log
(gca-recover --gid pipe-job --checkpoint latest -- job </dev/null 2>>$S/recover3.out &
	echo $! > /tmp/prec.pid; wait $!; echo $? > $S/recover3.rc) | cat >> $S/pipe2.out &
after 30 $S/pipe.log 'mark killed'
i=0; until grep -q '^counter' $S/pipe2.out 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
kill -TERM $(cat /tmp/prec.pid)
i=0; until [ -e $S/recover3.rc ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
cp /tmp/cts-vm/images/vm-job/$(cat $S/ckpt1.id)/cpuinfo.img $S/ckpt1.cpuinfo.img
# 7. nor can a user restore: gca-recover as uid 1000 is refused before criu runs
su -s /bin/sh user -c "GCA_CTS_SOCKET=$GCA_CTS_SOCKET exec gca-recover --gid vm-job --checkpoint latest -- touch /tmp/user/ran" \
	</dev/null >$S/user-recover.out 2>&1; echo $? > $S/user-recover.rc
[ -e /tmp/user/ran ] && echo ran >> $S/user-recover.out
touch $S/recovered

# 7. figures: plain criu dump here, gca-ctl checkpoint from the host, same job, same boot
for mib in 16 256; do
	gca-exec --gid bench-$mib -- job --log $S/bench-$mib.log --tick 200 --mib $mib </dev/null >>$S/job.out 2>&1 &
	bpid=$!
	logwait 60 $S/bench-$mib.log ready || break
	binit=$(child $bpid)
	rss=$(awk '/VmRSS/ { print $2 }' /proc/$(child $binit)/status)
	mkdir -p /tmp/plain-$mib
	t=$(up)
	criu dump --leave-running -t $binit -D /tmp/plain-$mib -o dump.log > /dev/null 2>&1; rc=$?
	secs=$(awk -v a=$t -v b=$(up) 'BEGIN { print b - a }')
	put $S/bench-$mib.plain "plain $mib $rc $secs $rss"
	rm -rf /tmp/plain-$mib
	gwait 120 $S/bench-$mib.done
	kill -9 $binit; wait $bpid 2>/dev/null
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

# The broker checkpoints vm-job twice and pipe-job once; the counter before and after each bounds
# the dump point.
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$1"; }
ckpt() {	# ckpt NAME GID LOG
	local i=$1 gid=$2 log=$3 lo hi id t
	lo=$(last "$log"); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint "$gid" 2>"$T/ckpt$i.err" | awk '$1 == "checkpoint" { print $2; exit }')
	hi=$(last "$log")
	echo "$lo $hi" > "$T/ckpt$i.range"
	if [ -n "$id" ]; then
		pass "gca-ctl checkpoint $gid #$i: $id (counter $lo..$hi, $(since "$t") s)"
		echo "$id" > "$share/ckpt$i.id.tmp" && mv "$share/ckpt$i.id.tmp" "$share/ckpt$i.id"
	else
		fail "gca-ctl checkpoint $gid #$i" "$(cat "$T/ckpt$i.err")"
	fi
}
sleep 1
ckpt 1 vm-job "$share/job.log"
sleep 2
ckpt 2 vm-job "$share/job.log"
ckpt p pipe-job "$share/pipe.log"
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vm-job)(gcaCoreService=criu))" gcaCheckpointId 2>/dev/null |
	grep -c '^gcaCheckpointId:')
expect_eq "two criu records of vm-job in the directory (ldapsearch)" "$recs" 2
# What a restore must match (item 5), read from one record and checked against the guest itself;
# then searched for with exact values, as a broker looks for a resource where it can come back.
props=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$(cat "$share/ckpt1.id" 2>/dev/null)))" gcaProperty 2>/dev/null |
	sed -n 's/^gcaProperty: //p')
prop() { echo "$props" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }'; }
expect_eq "the record names the guest's criu version (criu --version there)" "$(prop criu)" "$(cat "$share/guest.criu")"
expect_eq "the record names the guest's kernel release (uname -r there)" "$(prop kernel)" "$(cat "$share/guest.kernel")"
want=
for k in criu kernel cpu.xfeatures cpu.xsave cpu.fpu; do
	v=$(prop "$k")
	[ -n "$v" ] || fail "the record has a $k= property" "properties: $(echo $props)"
	want+="(gcaProperty=$k=$(printf '%s' "$v" | sed 's/\\/\\5c/g; s/\*/\\2a/g; s/(/\\28/g; s/)/\\29/g'))"
done
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vm-job)$want)" gcaCheckpointId 2>/dev/null | grep -c '^gcaCheckpointId:')
expect_eq "both records of vm-job carry exactly these values (criu $(prop criu), kernel $(prop kernel), cpu.xfeatures=$(prop cpu.xfeatures), cpu.xsave=$(prop cpu.xsave))" "$recs" 2
ctsm=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=cts,$GCA_BASE_DN" \
	"(&(objectClass=gcaTranslationService)$want)" cn 2>/dev/null | sed -n 's/^cn: //p')
expect_eq "a broker's search for them on ou=cts finds the CTS cts-vm, and only it" "$ctsm" cts-vm
sleep 1
touch "$share/go.kill"

# ---- what the guest saw, and the job's own log ----
if lab_wait_file 120 "$share/recovered"; then pass "the guest ran the collision, killed the jobs and recovered them"
else fail "the guest ran the collision, killed the jobs and recovered them" "$(tail -5 "$share/scenario.log" "$share"/recover*.out 2>/dev/null)"; fi
log=$share/job.log
read -r lo1 hi1 < "$T/ckpt1.range" 2>/dev/null || lo1=-1 hi1=-1
read -r lo2 hi2 < "$T/ckpt2.range" 2>/dev/null || lo2=-1 hi2=-1
in_range() { [ -n "$1" ] && [ "$1" -ge $(($2 + 1)) ] && [ "$1" -le $(($3 + 1)) ]; }
# ns.exec: gca-exec, its child the init (ppid, pid outside, pid inside), / the job (ppid, pids)
read -r x_exec x_init x_ippid _ x_ins _ x_job x_jppid _ x_jns _ < "$share/ns.exec" 2>/dev/null
if [ "${x_ippid:-}" = "${x_exec:-x}" ] && [ "${x_ins:-}" = 1 ] && [ "${x_jppid:-}" = "${x_init:-x}" ] && [ "${x_jns:-}" = 2 ]; then
	pass "gca-exec (pid $x_exec) runs the job in its own PID namespace: init $x_init is pid 1 there, the job $x_job pid 2"
else
	fail "gca-exec runs the job in its own PID namespace under an init" "ns.exec: $(cat "$share/ns.exec" 2>/dev/null)"
fi
# ns.copy: the copy's init (ppid, pids) / its job / whether the original still ran
read -r c_init _ _ c_ins _ c_job _ _ c_jns _ _ c_alive < "$share/ns.copy" 2>/dev/null
if [ "$(cat "$share/copy.rc" 2>/dev/null)" = 0 ] && [ "${c_ins:-}" = 1 ] && [ "${c_jns:-}" = 2 ] &&
	[ "${c_alive:-}" = yes ] && [ "${c_init:-}" != "${x_init:-}" ]; then
	pass "checkpoint 1 restored while its job still runs: both have pids 1 and 2 in namespaces of their own (inits $x_init and $c_init)"
else
	fail "checkpoint 1 restored while its job still runs" "criu restore rc $(cat "$share/copy.rc" 2>/dev/null); ns.copy: $(cat "$share/ns.copy" 2>/dev/null); $(cat "$share/copy.log" 2>/dev/null)"
fi
# between the marks both wrote: the copy from checkpoint 1's counter on, the original past it
before=$(awk '/^mark copy$/ { print n; exit } $1 == "counter" { n = $2 }' "$log")
read -r c_first c_n o_n < <(awk -v b="${before:-0}" '/^mark copy end/ { f = 0 } f && $1 == "counter" {
	if ($2 + 0 <= b) { if (!c) first = $2; c++ } else o++ } /^mark copy$/ { f = 1 }
	END { print first + 0, c + 0, o + 0 }' "$log")
if in_range "$c_first" "$lo1" "$hi1" && [ "$o_n" -gt 0 ]; then
	pass "both copies counted side by side: the restored one from $c_first ($c_n lines, dumped at $lo1..$hi1), the original past $before ($o_n lines)"
else
	fail "both copies counted side by side" "copy's first counter $c_first ($c_n lines, dump window $lo1..$hi1), original's lines past $before: $o_n"
fi
expect_eq "checkpoint 1 recovered through the CTS while the job ran: the CTS fenced the original (SIGTERM to its init, the job's exit 3 is gca-exec's status)" "$(cat "$share/exec.rc" 2>/dev/null)" 3
if grep -q "stopping its copy here: SIGTERM to process group" "$share/fence.log" 2>/dev/null && grep -q "is stopped" "$share/fence.log"; then
	pass "the guest's CTS logged the fence: $(head -1 "$share/fence.log" | cut -c1-160)"
else
	fail "the guest's CTS logged the fence" "$(cat "$share/fence.log" "$share/fence.out" 2>/dev/null | tail -5)"
fi
expect_eq "the recovered copy ran on after the fence; SIGKILL to its init ended it (gca-recover: 128+9)" "$(cat "$share/fence.alive" 2>/dev/null) $(cat "$share/fence.rc" 2>/dev/null)" "yes 137"
# the original's last counter: the highest before the mark (the copy's lines are lower)
killed=$(awk '/^mark killed/ { print n; exit } $1 == "counter" && $2 + 0 > n { n = $2 + 0 }' "$log")
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark recover2/ { f = 1 }' "$log")
if in_range "$r1" "$lo2" "$hi2" && [ "$r1" -le "${killed:-0}" ]; then
	pass "restored from the latest checkpoint: resumed at counter $r1 (dumped at $lo2..$hi2, killed at $killed)"
else
	fail "restored from the latest checkpoint: resumed where it was dumped" "first counter $r1, dump window $lo2..$hi2, killed at $killed; $(tail -3 "$share/recover1.out")"
fi
read -r r_rec r_init r_ippid _ r_ins _ r_job r_jppid _ r_jns _ < "$share/ns.recover" 2>/dev/null
if [ "${r_ippid:-}" = "${r_rec:-x}" ] && [ "${r_ins:-}" = 1 ] && [ "${r_jppid:-}" = "${r_init:-x}" ] && [ "${r_jns:-}" = 2 ]; then
	pass "the restored init ($r_init, pid 1 in a new namespace) is gca-recover's child (PPid $r_ippid), the job pid 2 under it"
else
	fail "the restored tree is gca-recover's child, in a namespace of its own" "ns.recover: $(cat "$share/ns.recover" 2>/dev/null)"
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
# the pipe job: its stdout was a pipe at the dump; restored, it writes into gca-recover's stdout
read -r lop hip < "$T/ckptp.range" 2>/dev/null || lop=-1 hip=-1
p1=$(awk '$1 == "counter" { n++ } END { print n + 0 }' "$share/pipe1.out" 2>/dev/null)
p2=$(awk '$1 == "counter" { if (!n) first = $2; n++ } END { print first + 0, n + 0 }' "$share/pipe2.out" 2>/dev/null)
if [ "$p1" -gt 0 ] && in_range "${p2% *}" "$lop" "$hip"; then
	pass "the restored pipe job writes into gca-recover's stdout pipe (--inherit-fd): from counter ${p2% *} on (dumped at $lop..$hip), ${p2#* } lines"
else
	fail "the restored pipe job writes into gca-recover's stdout pipe" "before: $p1 lines; after: first counter, lines: $p2; dump window $lop..$hip; $(tail -3 "$share/recover3.out" 2>/dev/null)"
fi
expect_eq "SIGTERM to the pipe job's gca-recover came back as its status 3" "$(cat "$share/recover3.rc" 2>/dev/null)" 3
# a user (uid 1000) gets a clear no on both sides: CRIU 3.17 has no --unprivileged mode, which
# ordinary users' jobs need (they are proven with CRIU 4.1 in tests/native/criu_user.sh)
why="uid 1000 is not root: criu 3.17.1 has no --unprivileged mode, so only root's jobs can be checkpointed here (ordinary users' jobs need a newer criu, e.g. Debian 13's 4.1) (forbidden)"
expect_eq "gca-exec as a user, for a criu CTS with CRIU 3.17: exit 1" "$(cat "$share/user.rc" 2>/dev/null)" 1
check "  the CTS refuses the binding, saying why, and the job did not run" \
	grep -qx "gca-exec: GID user-job refused: $why" "$share/user.out"
check "  (nothing else on its stderr)" test "$(wc -l < "$share/user.out")" -eq 1
expect_eq "gca-recover as a user, of a criu checkpoint: exit 1" "$(cat "$share/user-recover.rc" 2>/dev/null)" 1
check "  it says why, and nothing ran" \
	grep -qx "gca-recover: cannot prepare checkpoint latest of vm-job: $why" "$share/user-recover.out"
# criu's own record of the CPU in the dump (decoded here with crit) is what the record says
if cpu=$(crit decode -i "$share/ckpt1.cpuinfo.img" 2>"$T/crit.err" | python3 -c 'import json, sys
e = json.load(sys.stdin)["entries"][0]["x86_entry"][0]
print("0x%x %d/%d" % (e.get("xfeatures_mask", 0), e.get("xsave_size", 0), e.get("xsave_size_max", 0)))' 2>>"$T/crit.err"); then
	expect_eq "cpu.xfeatures and cpu.xsave are criu's own (crit decode of checkpoint 1's cpuinfo.img)" \
		"$(prop cpu.xfeatures) $(prop cpu.xsave)" "$cpu"
else
	fail "crit decodes checkpoint 1's cpuinfo.img" "$(tail -2 "$T/crit.err")"
fi

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
		# where the CTS's part of it went, from its own log line (cts/core/criu.c)
		read -r cdump chash < <(awk -v g="of bench-$mib:" 'index($0, g) && /hashed and sealed/ {
			for (i = 1; i <= NF; i++) { if ($i == "pid") d = $(i + 2); if ($i == "sealed") h = $(i + 1) }
			print d, h; exit }' "$share/cts-vm.log")
		pass "bench $mib MiB (rss $((rss / 1024)) MiB): criu dump ${psecs} s, gca-ctl checkpoint ${gsecs} s (the CTS's criu dump ${cdump:-?} s, hash and seal ${chash:-?} s), ratio $ratio"
		rows+=("{\"mib\": $mib, \"rss_kib\": $rss, \"criu_dump_s\": $psecs, \"gca_ctl_checkpoint_s\": $gsecs, \"cts_criu_dump_s\": ${cdump:-null}, \"cts_hash_seal_s\": ${chash:-null}, \"ratio\": $ratio}")
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
		echo "  \"criu\": \"$(cat "$share/guest.criu")\","
		echo "  \"sha256\": \"the guest CTS runs OpenSSL's integer sha256 (OPENSSL_ia32cap): TCG emulates its AVX2 code 3-4x slower\","
		echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
		echo "  \"runs\": [${rows[0]}, ${rows[1]}]"
		echo "}"
	} > "$bench_json.tmp" && mv "$bench_json.tmp" "$bench_json"
	pass "figures written to ${bench_json#"$GCA_TOP"/}"
fi

# ---- the end ----
if lab_wait 60; then pass "the guest powered off"; else fail "the guest powered off"; fi
sed 's/^/# guest: /' "$share/scenario.log"
echo "# suite wall time $(since "$suite_t0") s"
done_testing
