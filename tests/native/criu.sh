# criu-native: the criu core service on this machine's own kernel (CRIU 4.1, the Debian 13 run).
# timeout: 240
#
# The assertions of tests/vm/criu.sh, without a guest: gca-site's own criu CTS (cts-criu) runs a
# job under gca-exec in a PID namespace of its own, and a second one whose stdout is a pipe; the
# broker checkpoints the first twice and the second once with gca-ctl; the records name what a
# restore must match (criu --version, uname -r, the dump's own cpuinfo.img decoded by crit);
# checkpoint 1 is restored by criu while its job still runs (two copies, each with pids 1 and 2);
# the job is killed and brought back with gca-recover from the latest checkpoint and from the
# first, signals reaching it and its exit status coming back; the pipe job's output goes to
# gca-recover's own pipe. Ordinary users' jobs: tests/native/criu_user.sh.
# Then memory tracking: where the kernel has no soft-dirty bits (`criu check --feature
# mem_dirty_track` fails), a CTS configured with criu_incremental or criu_predump refuses them at
# start with that reason and is published unavailable with it; where it has them, it is ok.
# A criu CTS with compress zstd stores the dump's pages compressed and restores them.
# Incremental chains themselves are proven on Debian 12's kernel in qemu (tests/vm/criu_incr.sh).
# Run inside a root with its own mount namespace (scripts/gca-debian13): criu reads the mount tree.
. "$GCA_TOP/tests/lib.sh"

S=criu-native
command -v criu >/dev/null || not_run $S "criu is not installed (make deps)"
command -v ldapsearch >/dev/null || not_run $S "ldapsearch is not installed (make deps)"
[ "$(id -u)" = 0 ] || not_run $S "criu dumps and restores root's jobs: run as root"
why=$(criu check 2>&1 </dev/null | grep -v 'exited, status=' | grep -m1 Error | sed 's/^Error ([^)]*): //')
criu check >/dev/null 2>&1 </dev/null ||
	not_run $S "criu check fails on kernel $(uname -r) with criu $(criu --version | awk '/^Version:/ { print $2 }'): ${why:-no reason given}"
for p in gca-cts gca-exec gca-recover gca-gcs gca-ctl; do
	[ -x "$GCA_BUILD/$p" ] || { fail "$GCA_BUILD/$p is built (make)"; exit 1; }
done
test_tmpdir
T=$TEST_TMP
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
job=$T/job
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$job" "$GCA_TOP/tests/vm/guest/job.c" ||
	{ fail "the test job builds"; exit 1; }
pass "criu check passes on kernel $(uname -r) with criu $(criu --version | awk '/^Version:/ { print $2 }')"

site=$T/site
on_exit "gca-site down '$site'"
GCA_SITE_HEARTBEAT=2 gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; sed 's/^/#   /' "$T/site.log"; exit 1; }
. "$site/site.env"
export GCA_CTS_SOCKET=$GCA_CTS_SOCKET_CRIU
st=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "cn=cts-criu,ou=cts,$GCA_BASE_DN" -s base gcaStatus 2>/dev/null | sed -n 's/^gcaStatus: //p')
expect_eq "the site's criu CTS cts-criu is published ok (ldapsearch)" "$st" ok

# logwait SECONDS FILE PATTERN; after SECONDS FILE MARK: a counter line after the line MARK
logwait() { wait_for "$1" grep -q "$3" "$2"; }
after() { wait_for "$1" awk -v m="$3" 'f && /^counter/ { found = 1 } $0 == m { f = 1 } END { exit !found }' "$2"; }
child() { awk '{ print $1 }' "/proc/$1/task/$1/children" 2>/dev/null; }
# nsline PID: "PPID NSPID..." (NSpid: the pid in each namespace, outermost first)
nsline() { awk '/^PPid:/ { pp = $2 } /^NSpid:/ { $1 = ""; ns = substr($0, 2) } END { print pp, ns }' "/proc/$1/status" 2>/dev/null; }
# reap PID SECONDS: its exit status in $reaped, or 255 if it did not end in time (then it is
# killed); not in $(...), whose subshell cannot wait for the suite's children
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

# ---- 1. the job under gca-exec, in a PID namespace of its own (logs appended: criu checks the
# size of other files it reopens); and one whose stdout is a pipe ----
log=$T/job.log plog=$T/pipe.log
setsid gca-exec --gid nat-job -- "$job" --log "$log" --tick 100 --mib 4 </dev/null >>"$T/job.out" 2>&1 &
jobpid=$!
on_exit "killtree $jobpid"
( setsid gca-exec --gid pipe-job -- "$job" --log "$plog" --tick 100 --mib 1 --stdout 1 </dev/null 2>>"$T/job.out" &
	echo $! > "$T/pipe.pid"; wait ) | cat >> "$T/pipe1.out" &
if logwait 30 "$log" ready && logwait 30 "$plog" ready; then pass "gca-exec started both jobs"
else fail "gca-exec started both jobs" "$(tail -3 "$T/job.out" "$site/log/cts-criu.log" 2>/dev/null)"; fi
on_exit "killtree $(cat "$T/pipe.pid")"
init=$(child $jobpid)
read -r x_ippid _ x_ins < <(nsline "$init")
x_job=$(child "$init")
read -r x_jppid _ x_jns < <(nsline "$x_job")
if [ "${x_ippid:-}" = "$jobpid" ] && [ "${x_ins:-}" = 1 ] && [ "${x_jppid:-}" = "${init:-x}" ] && [ "${x_jns:-}" = 2 ]; then
	pass "gca-exec (pid $jobpid) runs the job in its own PID namespace: init $init is pid 1 there, the job $x_job pid 2"
else
	fail "gca-exec runs the job in its own PID namespace under an init" "init $init: $(nsline "$init"); job $x_job: $(nsline "$x_job")"
fi
check "gca-ctl jobs shows nat-job on cts-criu" bash -c "gca-ctl jobs | grep nat-job | grep -q cts-criu"

# ---- 2. the broker checkpoints nat-job twice and pipe-job once; the counter before and after
# each bounds the dump point ----
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$1"; }
ckpt() {	# ckpt NAME GID LOG
	local i=$1 gid=$2 log=$3 lo hi id t
	lo=$(last "$log"); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint "$gid" 2>"$T/ckpt$i.err" | awk '$1 == "checkpoint" { print $2; exit }')
	hi=$(last "$log")
	echo "$lo $hi" > "$T/ckpt$i.range"
	echo "$id" > "$T/ckpt$i.id"
	if [ -n "$id" ]; then pass "gca-ctl checkpoint $gid #$i: $id (counter $lo..$hi, $(since "$t") s)"
	else fail "gca-ctl checkpoint $gid #$i" "$(cat "$T/ckpt$i.err"; tail -3 "$site/log/cts-criu.log")"; fi
}
sleep 1
ckpt 1 nat-job "$log"
sleep 2
ckpt 2 nat-job "$log"
ckpt p pipe-job "$plog"
id1=$(cat "$T/ckpt1.id")
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=nat-job)(gcaCoreService=criu))" gcaCheckpointId 2>/dev/null |
	grep -c '^gcaCheckpointId:')
expect_eq "two criu records of nat-job in the directory (ldapsearch)" "$recs" 2
props=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$id1))" gcaProperty 2>/dev/null | sed -n 's/^gcaProperty: //p')
prop() { echo "$props" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }'; }
expect_eq "the record names this criu's version (criu --version)" "$(prop criu)" "$(criu --version | awk '/^Version:/ { print $2 }')"
expect_eq "the record names this kernel's release (uname -r)" "$(prop kernel)" "$(uname -r)"
want=
for k in criu kernel cpu.xfeatures cpu.xsave cpu.fpu; do
	v=$(prop "$k")
	[ -n "$v" ] || fail "the record has a $k= property" "properties: $(echo $props)"
	want+="(gcaProperty=$k=$(printf '%s' "$v" | sed 's/\\/\\5c/g; s/\*/\\2a/g; s/(/\\28/g; s/)/\\29/g'))"
done
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=nat-job)$want)" gcaCheckpointId 2>/dev/null | grep -c '^gcaCheckpointId:')
expect_eq "both records of nat-job carry exactly these values (cpu.xfeatures=$(prop cpu.xfeatures), cpu.xsave=$(prop cpu.xsave))" "$recs" 2
ctsm=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=cts,$GCA_BASE_DN" \
	"(&(objectClass=gcaTranslationService)(gcaCoreService=criu)$want)" cn 2>/dev/null | sed -n 's/^cn: //p')
expect_eq "a broker's search for them on ou=cts finds the CTS cts-criu" "$ctsm" cts-criu
img1=$site/cts/cts-criu/images/nat-job/$id1
if cpu=$(crit decode -i "$img1/cpuinfo.img" 2>"$T/crit.err" | python3 -c 'import json, sys
e = json.load(sys.stdin)["entries"][0]["x86_entry"][0]
print("0x%x %d/%d" % (e.get("xfeatures_mask", 0), e.get("xsave_size", 0), e.get("xsave_size_max", 0)))' 2>>"$T/crit.err"); then
	expect_eq "cpu.xfeatures and cpu.xsave are criu's own (crit decode of checkpoint 1's cpuinfo.img)" \
		"$(prop cpu.xfeatures) $(prop cpu.xsave)" "$cpu"
else
	fail "crit decodes checkpoint 1's cpuinfo.img" "$(ls "$img1" 2>&1 | head -3; tail -2 "$T/crit.err")"
fi

# ---- 3. the collision: checkpoint 1 restored by criu itself while its job still runs ----
echo "mark copy" >> "$log"
mkdir -p "$T/copy"
criu restore -d -D "$img1" -W "$T/copy" --pidfile "$T/copy/pid" -o "$T/copy/restore.log" \
	</dev/null >/dev/null 2>&1; crc=$?
copy=$(cat "$T/copy/pid" 2>/dev/null)
sleep 1
alive=no; kill -0 "$init" 2>/dev/null && kill -0 "$x_job" 2>/dev/null && alive=yes
read -r _ _ c_ins < <(nsline "${copy:-0}")
c_job=$(child "${copy:-0}")
read -r _ _ c_jns < <(nsline "${c_job:-0}")
if [ "$crc" = 0 ] && [ "${c_ins:-}" = 1 ] && [ "${c_jns:-}" = 2 ] && [ "$alive" = yes ] && [ "${copy:-}" != "$init" ]; then
	pass "checkpoint 1 restored while its job still runs: both have pids 1 and 2 in namespaces of their own (inits $init and $copy)"
else
	fail "checkpoint 1 restored while its job still runs" "criu restore rc $crc; copy ${copy:-none} ($c_ins / $c_jns), original alive: $alive; $(tail -3 "$T/copy/restore.log")"
fi
[ -n "$copy" ] && kill -9 "$copy"
echo "mark copy end" >> "$log"
read -r lo1 hi1 < "$T/ckpt1.range" 2>/dev/null || lo1=-1 hi1=-1
read -r lo2 hi2 < "$T/ckpt2.range" 2>/dev/null || lo2=-1 hi2=-1
in_range() { [ -n "$1" ] && [ "$1" -ge $(($2 + 1)) ] && [ "$1" -le $(($3 + 1)) ]; }
before=$(awk '/^mark copy$/ { print n; exit } $1 == "counter" { n = $2 }' "$log")
read -r c_first c_n o_n < <(awk -v b="${before:-0}" '/^mark copy end/ { f = 0 } f && $1 == "counter" {
	if ($2 + 0 <= b) { if (!c) first = $2; c++ } else o++ } /^mark copy$/ { f = 1 }
	END { print first + 0, c + 0, o + 0 }' "$log")
if in_range "$c_first" "$lo1" "$hi1" && [ "$o_n" -gt 0 ]; then
	pass "both copies counted side by side: the restored one from $c_first ($c_n lines, dumped at $lo1..$hi1), the original past $before ($o_n lines)"
else
	fail "both copies counted side by side" "copy's first counter $c_first ($c_n lines, dump window $lo1..$hi1), original's lines past $before: $o_n"
fi

# ---- 4. the job dies: SIGKILL to its init ends the namespace; gca-exec says 128+9 ----
kill -9 "$init"
reap $jobpid 10
expect_eq "SIGKILL to the job's init ended it; gca-exec's status says so (128+9)" "$reaped" 137
echo "mark killed" >> "$log"

# ---- 5. back from the latest checkpoint; SIGTERM to gca-recover reaches the job ----
t=$(date +%s.%N)
setsid gca-recover --gid nat-job --checkpoint latest -- "$job" --log "$log" </dev/null >>"$T/recover1.out" 2>&1 &
rpid=$!
on_exit "killtree $rpid"
after 30 "$log" 'mark killed'
rt=$(since "$t")
rinit=$(child $rpid)
read -r r_ippid _ r_ins < <(nsline "${rinit:-0}")
r_job=$(child "${rinit:-0}")
read -r r_jppid _ r_jns < <(nsline "${r_job:-0}")
killed=$(awk '/^mark killed/ { print n; exit } $1 == "counter" && $2 + 0 > n { n = $2 + 0 }' "$log")
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
if in_range "$r1" "$lo2" "$hi2" && [ "$r1" -le "${killed:-0}" ]; then
	pass "restored from the latest checkpoint: resumed at counter $r1 (dumped at $lo2..$hi2, killed at $killed; first line after $rt s)"
else
	fail "restored from the latest checkpoint: resumed where it was dumped" "first counter $r1, dump window $lo2..$hi2, killed at $killed; $(tail -3 "$T/recover1.out")"
fi
if [ "${r_ippid:-}" = "$rpid" ] && [ "${r_ins:-}" = 1 ] && [ "${r_jppid:-}" = "${rinit:-x}" ] && [ "${r_jns:-}" = 2 ]; then
	pass "the restored init ($rinit, pid 1 in a new namespace) is gca-recover's child, the job pid 2 under it"
else
	fail "the restored tree is gca-recover's child, in a namespace of its own" "gca-recover $rpid, init ${rinit:-none}: $r_ippid/$r_ins, job ${r_job:-none}: $r_jppid/$r_jns"
fi
sleep 1
kill -TERM $rpid
reap $rpid 15
expect_eq "SIGTERM to gca-recover reached the job; its exit status 3 came back" "$reaped" 3
check "the restored job said where it stopped" grep -q '^stopped at' "$log"

# ---- 6. back from the first checkpoint id, ended by SIGUSR1 (exit 4) ----
echo "mark recover2" >> "$log"
setsid gca-recover --gid nat-job --checkpoint "$id1" -- "$job" --log "$log" </dev/null >>"$T/recover2.out" 2>&1 &
rpid=$!
on_exit "killtree $rpid"
after 30 "$log" 'mark recover2'
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark recover2/ { f = 1 }' "$log")
if in_range "$r2" "$lo1" "$hi1"; then pass "restored from the first checkpoint id: resumed at counter $r2 (dumped at $lo1..$hi1)"
else fail "restored from the first checkpoint id" "first counter $r2, dump window $lo1..$hi1; $(tail -3 "$T/recover2.out")"; fi
sleep 1
kill -USR1 $rpid
reap $rpid 15
expect_eq "SIGUSR1 to gca-recover reached the job; its exit status 4 came back" "$reaped" 4
expect_eq "the heap pattern survived every dump and restore" "$(grep -c 'heap bad' "$log")" 0

# ---- 7. the pipe job killed and recovered with a new pipe for stdout ----
pinit=$(child "$(cat "$T/pipe.pid")")
kill -9 "$pinit"
echo "mark killed" >> "$plog"
( setsid gca-recover --gid pipe-job --checkpoint latest -- "$job" </dev/null 2>>"$T/recover3.out" &
	echo $! > "$T/prec.pid"; wait $!; echo $? > "$T/recover3.rc" ) | cat >> "$T/pipe2.out" &
after 30 "$plog" 'mark killed'
wait_for 10 grep -q '^counter' "$T/pipe2.out"
kill -TERM "$(cat "$T/prec.pid")"
wait_for 10 test -s "$T/recover3.rc"
read -r lop hip < "$T/ckptp.range" 2>/dev/null || lop=-1 hip=-1
p1=$(awk '$1 == "counter" { n++ } END { print n + 0 }' "$T/pipe1.out" 2>/dev/null)
p2=$(awk '$1 == "counter" { if (!n) first = $2; n++ } END { print first + 0, n + 0 }' "$T/pipe2.out" 2>/dev/null)
if [ "$p1" -gt 0 ] && in_range "${p2% *}" "$lop" "$hip"; then
	pass "the restored pipe job writes into gca-recover's stdout pipe (--inherit-fd): from counter ${p2% *} on (dumped at $lop..$hip), ${p2#* } lines"
else
	fail "the restored pipe job writes into gca-recover's stdout pipe" "before: $p1 lines; after: first counter, lines: $p2; dump window $lop..$hip; $(tail -3 "$T/recover3.out" 2>/dev/null)"
fi
expect_eq "SIGTERM to the pipe job's gca-recover came back as its status 3" "$(cat "$T/recover3.rc" 2>/dev/null)" 3

# (ordinary users' jobs: tests/native/criu_user.sh)

# ---- 9. memory tracking: criu_incremental and criu_predump where the kernel can (not) track ----
# cts_track NAME SETTING: a criu CTS of the site with that one line more; its log and its entry
cts_track() {
	local name=$1 setting=$2
	gca-pki issue "$site/pki" cts "$name" >/dev/null || return 1
	gca-pki issue "$site/pki" sign "$name" >/dev/null || return 1
	sed "s/cts-criu/$name/g" "$site/cts-criu.ldif" > "$T/$name.ldif"
	# its own metrics port, if any: the site's CTS holds the one in cts-criu.conf
	sed -e "s/cts-criu/$name/g" -e "s|^descriptor .*|descriptor $T/$name.ldif|" -e '/^metrics_listen /d' \
	    "$site/cts-criu.conf" > "$T/$name.conf"
	echo "$setting" >> "$T/$name.conf"
	gca-cts -f "$T/$name.conf" --port-file "$T/$name.port" >>"$T/$name.log" 2>&1 &
	echo $! > "$T/$name.pid"
	on_exit "kill $(cat "$T/$name.pid")"
	wait_for 20 sh -c "ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b 'cn=$name,ou=cts,$GCA_BASE_DN' -s base gcaStatus | grep -q gcaStatus"
}
# criu's reason as the CTS takes it: its first Error line, else its first line ("Warn (...): Dirty
# tracking is OFF..."), without the source position
track_why=$(criu check --feature mem_dirty_track 2>&1 </dev/null | grep -v 'exited, status=' |
	awk 'NF && !first { first = $0 } /Error/ && !err { err = $0 } END { print err ? err : first }' | sed 's/^[^(]*([^)]*): //')
if criu check --feature mem_dirty_track >/dev/null 2>&1 </dev/null; then track=yes; else track=no; fi
for set in "criu_incremental 2" "criu_predump yes"; do
	key=${set%% *} name=cts-${set%% *}
	name=${name//_/-}
	cts_track "$name" "$set" || { fail "$name ($set) registers" "$(tail -3 "$T/$name.log")"; continue; }
	st=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "cn=$name,ou=cts,$GCA_BASE_DN" -s base gcaStatus 2>/dev/null | sed -n 's/^gcaStatus: //p')
	if [ $track = yes ]; then
		expect_eq "$set on a kernel that tracks memory: $name is published ok" "$st" ok
	else
		reason="$key: this kernel cannot track memory (criu check --feature mem_dirty_track: $track_why)"
		expect_eq "$set without memory tracking (no CONFIG_MEM_SOFT_DIRTY): $name is published unavailable with the reason" \
			"$st" "unavailable: $reason"
		check "  and its log says so at start" grep -qF "core service criu is unavailable here: $reason" "$T/$name.log"
	fi
	kill "$(cat "$T/$name.pid")"
	reap "$(cat "$T/$name.pid")" 10
	expect_eq "  $name stops on SIGTERM" "$reaped" 0
done

# ---- 10. compress zstd: a criu CTS that compresses each file of the dump in place (sealed again
# after), and restores the job from a verified, decompressed copy ----
if cts_track cts-zstd "compress zstd"; then
	zsock=$(sed -n 's/^socket //p' "$T/cts-zstd.conf")
	zstate=$(sed -n 's/^state //p' "$T/cts-zstd.conf")
	zlog=$T/zjob.log
	GCA_CTS_SOCKET=$zsock setsid gca-exec --gid zstd-job -- "$job" --log "$zlog" --tick 100 --mib 4 --text-mib 16 </dev/null >>"$T/zjob.out" 2>&1 &
	zpid=$!
	on_exit "killtree $zpid"
	logwait 30 "$zlog" ready || fail "a job (4 MiB of pattern, 16 MiB of text) starts under cts-zstd" "$(tail -3 "$T/zjob.out" "$T/cts-zstd.log")"
	sleep 1
	zlo=$(last "$zlog"); t=$(date +%s.%N)
	zid=$(gca-ctl checkpoint zstd-job 2>"$T/zckpt.err" | awk '$1 == "checkpoint" { print $2; exit }')
	zhi=$(last "$zlog")
	[ -n "$zid" ] && pass "gca-ctl checkpoint zstd-job on cts-zstd: $zid ($(since "$t") s)" || fail "checkpoint on cts-zstd" "$(cat "$T/zckpt.err"; tail -3 "$T/cts-zstd.log")"
	# zstd <sha256> <stored size> <raw size> <path>
	pages=$(awk '$1 == "zstd" && $5 ~ /^pages-/ { s += $3; r += $4 } END { print s + 0, r + 0 }' "$zstate/images/zstd-job/$zid/manifest" 2>/dev/null)
	if [ "${pages#* }" -gt $((20 * 1048576)) ] && [ "${pages% *}" -lt $((12 * 1048576)) ]; then
		pass "criu's pages are stored as zstd frames: ${pages% *} bytes for ${pages#* } (its manifest)"
	else
		fail "criu's pages stored compressed" "stored/raw: $pages; $(head -12 "$zstate/images/zstd-job/$zid/manifest" 2>&1)"
	fi
	kill -9 "$(child $zpid)"
	reap $zpid 10
	echo "mark killed" >> "$zlog"
	GCA_CTS_SOCKET=$zsock setsid gca-recover --gid zstd-job --checkpoint latest -- "$job" --log "$zlog" </dev/null >>"$T/zrec.out" 2>&1 &
	zr=$!
	on_exit "killtree $zr"
	after 30 "$zlog" 'mark killed'
	z1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$zlog")
	if in_range "$z1" "$zlo" "$zhi"; then pass "restored from the compressed image: resumed at counter $z1 (dumped at $zlo..$zhi)"
	else fail "restored from the compressed image" "first counter $z1, dump window $zlo..$zhi; $(tail -3 "$T/zrec.out" "$T/cts-zstd.log")"; fi
	expect_eq "  its heap pattern came back whole" "$(grep -c 'heap bad' "$zlog")" 0
	kill -TERM $zr
	reap $zr 15
	expect_eq "  SIGTERM to gca-recover reached the restored job (status 3)" "$reaped" 3
	kill "$(cat "$T/cts-zstd.pid")"
	reap "$(cat "$T/cts-zstd.pid")" 10
else
	fail "cts-zstd (compress zstd) registers" "$(tail -3 "$T/cts-zstd.log")"
fi

check "cts-criu is still running" kill -0 "$(cat "$site/cts-criu.pid")"
done_testing
