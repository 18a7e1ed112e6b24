# criu-user: ordinary users' criu jobs on this machine's own kernel (CRIU 4.1, the Debian 13 run).
# timeout: 240
#
# Two users who are not root (uids 61001 and 61002, through setpriv; neither needs an entry in
# /etc/passwd) each run a job under gca-exec on the site's criu CTS, with groups and rlimits of
# their own. The broker checkpoints both (the CTS dumps each as its user through gca-criu-helper);
# the images are root's, 0700. A restore while the old copy still runs is refused, naming the pid
# and its holder, before criu runs. Each job is killed and brought back by its user with
# gca-recover from the latest checkpoint and from a chosen one: signals reach it, its status comes
# back, and the job prints the same credentials (Uid, Gid, Groups, CapEff, CapPrm, CapBnd, CapAmb,
# NoNewPrivs, rlimits) after the restore as before the dump. User B's attempts on A's GID, A's
# checkpoint id, A's image folders (the store's and the verified copy) and a crafted image are
# refused before criu runs. The restored job is checkpointed again like any other. With
# CRIU_USER_COMPRESS=1 (tests/native/criu_user_zstd.sh) the site's CTSes compress their images
# (compress zstd): the copy lent to the user is verified, then decompressed, then lent.
# Run inside a root with its own mount namespace (scripts/gca-debian13): criu reads the mount tree.
. "$GCA_TOP/tests/lib.sh"

S=criu-user
compress=${CRIU_USER_COMPRESS:-0}
[ "$compress" = 1 ] && S=criu-user-zstd
command -v criu >/dev/null || not_run $S "criu is not installed (make deps)"
command -v setcap >/dev/null || not_run $S "setcap is not installed (libcap2-bin)"
[ "$(id -u)" = 0 ] || not_run $S "the suite makes two users' jobs with setpriv and a helper with setcap: run as root"
criu check >/dev/null 2>&1 </dev/null || not_run $S "criu check fails on kernel $(uname -r)"
criu --help 2>&1 | grep -q -- --unprivileged ||
	not_run $S "criu $(criu --version | awk '/^Version:/ { print $2 }') has no --unprivileged mode (the VM suite checks the refusal there)"
for p in gca-cts gca-exec gca-recover gca-criu-helper gca-gcs gca-ctl; do
	[ -x "$GCA_BUILD/$p" ] || { fail "$GCA_BUILD/$p is built (make)"; exit 1; }
done
test_tmpdir
T=$TEST_TMP
cd "$T" || exit 1	# the jobs' working folder: criu, as the job's user, must reach it
A=61001 B=61002 G=61050	# G: the group allowed to run gca-criu-helper
job=$T/job
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$job" "$GCA_TOP/tests/vm/guest/job.c" ||
	{ fail "the test job builds"; exit 1; }
chmod 0755 "$job"
# the wrappers where the users can run them (the build folder may be under /root); the helper
# root:G 0750 with its two file capabilities, as docs/ARCHITECTURE.md says to install it
mkdir -p "$T/bin" "$T/a" "$T/b" && chmod 0755 "$T/bin"
chown $A:$A "$T/a" && chown $B:$B "$T/b" && chmod 0700 "$T/a" "$T/b"
cp "$GCA_BUILD/gca-exec" "$GCA_BUILD/gca-recover" "$GCA_BUILD/gca-criu-helper" "$T/bin/"
chown 0:$G "$T/bin/gca-criu-helper" && chmod 0750 "$T/bin/gca-criu-helper"
setcap cap_checkpoint_restore,cap_setpcap=p "$T/bin/gca-criu-helper" ||
	{ fail "setcap on gca-criu-helper"; exit 1; }

site=$T/site
on_exit "gca-site down '$site'"
extra=
[ "$compress" = 1 ] && extra="compress zstd"
GCA_SITE_HEARTBEAT=2 GCA_SITE_CTS_EXTRA="$extra" gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; sed 's/^/#   /' "$T/site.log"; exit 1; }
. "$site/site.env"
chmod 0711 "$site" "$site/cts" 2>/dev/null	# the users reach the copies lent to them in staging/
export GCA_CTS_SOCKET=$GCA_CTS_SOCKET_CRIU
# as USER (A or B): its uid and gid, its own group and G, PATH to the copies above; asx the
# same in the place of a background subshell, so that $! is the program itself
as() { (asx "$@"); }
asx() {
	local u=$1; shift
	exec setpriv --reuid="$u" --regid="$u" --groups="$u,$G" --inh-caps=-all \
		env -i PATH="$T/bin:/usr/bin:/bin" GCA_CTS_SOCKET="$GCA_CTS_SOCKET" HOME="$T" "$@"
}

logwait() { wait_for "$1" grep -q "$3" "$2"; }
after() { wait_for "$1" awk -v m="$3" 'f && /^counter/ { found = 1 } $0 == m { f = 1 } END { exit !found }' "$2"; }
child() { awk '{ print $1 }' "/proc/$1/task/$1/children" 2>/dev/null; }
reap() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; reaped=255; return; fi
	wait "$1"; reaped=$?
}
killtree() { local c; for c in $(child "$1"); do killtree "$c"; done; kill -9 "$1" 2>/dev/null; }
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$1"; }
in_range() { [ -n "$1" ] && [ "$1" -ge $(($2 + 1)) ] && [ "$1" -le $(($3 + 1)) ]; }
# creds PID LOG: SIGHUP to the job, then the block of "cred" lines it wrote for it (none if the
# job did not answer)
creds() {
	local n
	n=$(grep -c '^cred end' "$2")
	kill -HUP "$1" 2>/dev/null || return 0
	wait_for 10 sh -c "[ \$(grep -c '^cred end' '$2') -gt $n ]" || return 0
	awk -v n="$n" '/^cred / && k == n { b = b $0 "\n" } /^cred end/ { k++ }  END { printf "%s", b }' "$2"
}
ckpt() {	# ckpt NAME GID LOG
	local lo hi id
	lo=$(last "$3")
	id=$(gca-ctl checkpoint "$2" 2>"$T/ckpt$1.err" | awk '$1 == "checkpoint" { print $2; exit }')
	hi=$(last "$3")
	echo "$lo $hi" > "$T/ckpt$1.range"
	echo "$id" > "$T/ckpt$1.id"
	if [ -n "$id" ]; then pass "gca-ctl checkpoint $2 #$1: $id (counter $lo..$hi)"
	else fail "gca-ctl checkpoint $2 #$1" "$(cat "$T/ckpt$1.err"; grep -a Error "$site"/cts/cts-criu/failed/*.log | tail -4)"; fi
}

# ---- 1. each user's job under gca-exec, with limits of its own ----
start() {	# start USER GID LOG OUT: the gca-exec's pid in $started
	asx "$1" bash -c 'ulimit -S -n 700 && ulimit -H -n 900 && ulimit -S -u 4000 && exec "$@"' _ \
		gca-exec --gid "$2" -- "$job" --log "$3" --tick 100 --mib 2 --creds 1 </dev/null >>"$4" 2>&1 &
	started=$!
}
la=$T/a/job.log lb=$T/b/job.log
# the jobs' output files are their users' own (criu, as the user, opens them again on restore)
for u in a b; do : > "$T/$u/$u.out"; done
chown $A "$T/a/a.out"; chown $B "$T/b/b.out"
start $A a-job "$la" "$T/a/a.out"; apid=$started
on_exit "killtree $apid"
start $B b-job "$lb" "$T/b/b.out"; bpid=$started
on_exit "killtree $bpid"
if logwait 30 "$la" ready && logwait 30 "$lb" ready; then pass "gca-exec started both users' jobs"
else fail "gca-exec started both users' jobs" "$(tail -3 "$T/a/a.out" "$T/b/b.out" "$site/log/cts-criu.log" 2>/dev/null)"; fi
ajob=$(child $apid) bjob=$(child $bpid)
ans=$(awk '/^NSpid:/ { print NF - 1 }' "/proc/$ajob/status" 2>/dev/null)
auid=$(awk '/^Uid:/ { print $2 }' "/proc/$ajob/status" 2>/dev/null)
expect_eq "A's job ($ajob) runs as uid $A, gca-exec's child, in no PID namespace of its own" "$auid ${ans:-x}" "$A 1"
acred0=$(creds "$ajob" "$la") bcred0=$(creds "$bjob" "$lb")
check "A's job prints its credentials: uid $A, groups $A $G, no capabilities, open files 700/900" \
	sh -c "printf '%s\n' '$acred0' | grep -q '^cred Uid:	$A	$A	$A	$A' &&
		printf '%s\n' '$acred0' | grep -q '^cred Groups:	$A $G' &&
		printf '%s\n' '$acred0' | grep -q '^cred CapEff:	0000000000000000' &&
		printf '%s\n' '$acred0' | grep -Eq '^cred Max open files +700 +900'"
check "gca-ctl jobs shows a-job and b-job on cts-criu" bash -c "gca-ctl jobs | grep a-job | grep -q cts-criu && gca-ctl jobs | grep -q b-job"

# ---- 2. the broker checkpoints both; the images are root's ----
sleep 1
ckpt 1 a-job "$la"
sleep 1
ckpt 2 a-job "$la"
ckpt b b-job "$lb"
id1=$(cat "$T/ckpt1.id") id2=$(cat "$T/ckpt2.id") idb=$(cat "$T/ckptb.id")
img=$site/cts/cts-criu/images/a-job/$id2
expect_eq "A's image folder is root's, 0700" "$(stat -c '%U %a' "$img" 2>&1)" "root 700"
expect_eq "  and every file in it is root's" "$(find "$img" ! -uid 0 2>&1 | wc -l) $(find "$img" -type f 2>/dev/null | wc -l | awk '{ print ($1 > 5) }')" "0 1"
if [ "$compress" = 1 ]; then
	check "  its pages are stored compressed (a zstd line in its manifest)" grep -Eq '^zstd [0-9a-f]{64} [0-9]+ [0-9]+ pages-' "$img/manifest"
else
	check "  its pages are stored as criu wrote them (no zstd line in its manifest)" sh -c "! grep -q '^zstd ' '$img/manifest'"
fi

# ---- 3. B against A: another user's GID, checkpoint id, image folders, a crafted image ----
mkdir -p "$T/b/w"; chown $B:$B "$T/b/w"
as $B gca-recover --gid a-job --checkpoint latest -- "$job" </dev/null >"$T/b1.out" 2>&1; rc=$?
expect_eq "B's gca-recover of A's GID: exit 1" "$rc" 1
check "  refused by the CTS: the GID belongs to A (before criu runs)" grep -q "cannot prepare checkpoint latest of a-job: GID a-job belongs to .* (forbidden)" "$T/b1.out"
as $B gca-recover --gid b-job --checkpoint "$id2" -- "$job" </dev/null >"$T/b2.out" 2>&1; rc=$?
expect_eq "B's gca-recover of its own GID with A's checkpoint id: exit 1" "$rc" 1
check "  refused: b-job has no such checkpoint" grep -q "GID b-job has no checkpoint $id2 in the directory" "$T/b2.out"
as $B gca-criu-helper restore "$img" "$T/b/w" </dev/null >"$T/b3.out" 2>&1; rc=$?
expect_eq "B's gca-criu-helper on A's image folder in the store: exit 1" "$rc" 1
check "  refused: it cannot even open it" grep -q "cannot open $img: Permission denied" "$T/b3.out"
mkdir -p "$T/b/crafted" && cp "$T/b3.out" "$T/b/crafted/pstree.img" && echo "uid $B" > "$T/b/crafted/gca-restore-for"
chown -R $B:$B "$T/b/crafted"
as $B gca-criu-helper restore "$T/b/crafted" "$T/b/w" </dev/null >"$T/b4.out" 2>&1; rc=$?
expect_eq "B's gca-criu-helper on a crafted image of its own: exit 1" "$rc" 1
check "  refused: not a copy the CTS verified" grep -q "is not a copy the CTS verified" "$T/b4.out"
expect_eq "  criu ran for none of them (no restore.log)" "$(ls "$T/b/w")" ""

# ---- 4. A restores while the old copy runs: refused, naming the pid ----
# (the CTS dumped A's job as A: root here cannot, it lacks CAP_SYS_RESOURCE)
as $A gca-recover --gid a-job --checkpoint latest -- "$job" </dev/null >"$T/a1.out" 2>&1; rc=$?
expect_eq "A's restore while its job still runs: exit 1" "$rc" 1
check "  refused before criu runs, naming the pid and its holder" \
	grep -q "gca-criu-helper: the job's pid $ajob is taken by process $ajob (job, uid $A): .*nothing was restored" "$T/a1.out"
check "  the running job is untouched" kill -0 "$ajob"

# ---- 5. A's job dies and comes back from the latest checkpoint, then from the first ----
kill -9 "$ajob"
reap $apid 10
expect_eq "SIGKILL to A's job: gca-exec says 137" "$reaped" 137
echo "mark killed" >> "$la"
asx $A gca-recover --gid a-job --checkpoint latest -- "$job" </dev/null >>"$T/a2.out" 2>&1 &
rpid=$!
on_exit "killtree $rpid"
after 30 "$la" 'mark killed'
read -r lo2 hi2 < "$T/ckpt2.range"
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$la")
if in_range "$r1" "$lo2" "$hi2"; then pass "A's job restored by A from the latest checkpoint: resumed at counter $r1 (dumped at $lo2..$hi2)"
else fail "A's job restored by A from the latest checkpoint" "first counter $r1, dump window $lo2..$hi2; $(tail -5 "$T/a2.out")"; fi
rjob=$(child $rpid)
expect_eq "  the restored job is gca-recover's child, with its old pid" "${rjob:-none}" "$ajob"
acred1=$(creds "$ajob" "$la")
expect_eq "  it prints the same credentials as before its dump (uid, gids, groups, capabilities, no_new_privs, rlimits)" "$acred1" "${acred0:-none before}"
ckpt 3 a-job "$la"
sleep 1
kill -TERM $rpid
reap $rpid 15
expect_eq "  SIGTERM to gca-recover reached the job; its exit status 3 came back" "$reaped" 3
echo "mark recover2" >> "$la"
asx $A gca-recover --gid a-job --checkpoint "$id1" -- "$job" </dev/null >>"$T/a3.out" 2>&1 &
rpid=$!
on_exit "killtree $rpid"
after 30 "$la" 'mark recover2'
read -r lo1 hi1 < "$T/ckpt1.range"
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark recover2/ { f = 1 }' "$la")
if in_range "$r2" "$lo1" "$hi1"; then pass "A's job restored from its first checkpoint id: resumed at counter $r2 (dumped at $lo1..$hi1)"
else fail "A's job restored from its first checkpoint id" "first counter $r2, dump window $lo1..$hi1; $(tail -5 "$T/a3.out")"; fi
expect_eq "  the same credentials again" "$(creds "$ajob" "$la")" "${acred0:-none before}"
copy=$(ls -d "$site/cts/cts-criu/staging/restore-$rpid-"* 2>/dev/null | head -1)
expect_eq "  the copy criu read is root's, for A's group, 0750, writable by nobody else" "$(stat -c '%U %g %a' "$copy" 2>&1)" "root $A 750"
as $B gca-criu-helper restore "$copy" "$T/b/w" </dev/null >"$T/b5.out" 2>&1; rc=$?
check "  B's gca-criu-helper on that copy is refused (exit $rc)" grep -q "cannot open $copy: Permission denied" "$T/b5.out"
sleep 1
kill -USR1 $rpid
reap $rpid 15
expect_eq "  SIGUSR1 to gca-recover reached the job; its exit status 4 came back" "$reaped" 4
expect_eq "  the heap pattern survived every dump and restore" "$(grep -c 'heap bad' "$la")" 0

# ---- 6. B's job the same way, from its own checkpoint ----
kill -9 "$bjob"
reap $bpid 10
echo "mark killed" >> "$lb"
asx $B gca-recover --gid b-job --checkpoint "$idb" -- "$job" </dev/null >>"$T/b6.out" 2>&1 &
rpid=$!
on_exit "killtree $rpid"
after 30 "$lb" 'mark killed'
read -r lob hib < "$T/ckptb.range"
r3=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$lb")
if in_range "$r3" "$lob" "$hib"; then pass "B's job restored by B: resumed at counter $r3 (dumped at $lob..$hib)"
else fail "B's job restored by B" "first counter $r3, dump window $lob..$hib; $(tail -5 "$T/b6.out")"; fi
expect_eq "  the same credentials as before (uid $B)" "$(creds "$bjob" "$lb")" "${bcred0:-none before}"
kill -TERM $rpid
reap $rpid 15
expect_eq "  SIGTERM came back as its status 3" "$reaped" 3

check "cts-criu is still running" kill -0 "$(cat "$site/cts-criu.pid")"
done_testing
