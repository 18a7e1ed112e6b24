# gca-cts under faults an operator meets (issue 17, the fault campaign): a restart on a full state
# disk, checkpoints asked before the jobs re-attached after a restart, a full outbox, an app job
# whose save finds no space, an image whose copy outlived its CTS. A full disk is a small tmpfs
# mounted over the CTS's state folder inside a mount namespace of the test's own (unshare -m), so
# no mount outlives what runs in it.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
command -v unshare >/dev/null || not_run cts_faults "unshare (util-linux) is not installed"
[ "$(id -u)" = 0 ] || not_run cts_faults "mounting a tmpfs needs root"
unshare -m true 2>/dev/null || not_run cts_faults "unshare -m is not allowed here"
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
counter=$GCA_BUILD/examples/counter
state=$site/cts/cts-app
cts_pid() { cat "$site/cts-app.pid"; }
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }

# fill DIR KB: fills the tmpfs at DIR but for about KB kilobytes
fill() { rm -f "$1/.fill"; dd if=/dev/zero of="$1/.fill" bs=4k count=$(( ($(df -k --output=avail "$1" | tail -1) - $2) / 4 )) 2>/dev/null; }
# full_disk DIR CMD...: runs CMD in a mount namespace where DIR (in the CTS's state folder) is a
# copy of itself on a tmpfs filled to the last byte; the namespace (and its mount) ends with CMD
# and what it started there (a CTS left running in it is killed first, with SIGKILL).
full_disk() {
	local dir=$1 rc; shift
	unshare -m --propagation private bash -c '
		dir=$1 pidf=$2; shift 2
		cp -a "$dir" "$dir.copy" && mount -t tmpfs -o size=512k tmpfs "$dir" &&
		chmod --reference="$dir.copy" "$dir" && cp -a "$dir.copy/." "$dir/" || exit 99
		fill "$dir" 0
		"$@"; rc=$?
		pid=$(cat "$pidf" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
		exit $rc' full_disk "$dir" "$site/cts-app.pid" "$@"
	rc=$?
	rm -rf "$dir.copy"
	return $rc
}
# after_reattach: restarts the CTS (gca-site up), waits until fault-job re-attached, then asks for a
# checkpoint; prints gca-ctl's output and "rc N"
after_reattach() {
	local n
	n=$(grep -c 'GID fault-job: pid [0-9]* re-attached' "$site/log/cts-app.log")
	gca-site up "$site" >/dev/null || { echo "gca-site up failed"; return 1; }
	wait_for 15 sh -c "[ \$(grep -c 'GID fault-job: pid [0-9]* re-attached' '$site/log/cts-app.log') -gt $n ]"
	gca-ctl checkpoint fault-job 2>&1; echo "rc $?"
}
# pad_save: restarts the CTS (gca-site up), fills its staging folder but for 16 KiB, starts a counter
# that saves 256 KiB (a first write() that is cut short), asks for a checkpoint; prints gca-ctl's
# output and "rc N". The job runs in full_disk's namespace: it must see the tmpfs it saves into.
pad_save() {
	local log=$site/../pad.log p
	gca-site up "$site" >/dev/null || { echo "gca-site up failed"; return 1; }
	fill "$site/cts/cts-app/staging" 16
	gca-exec --gid pad-job -- "$GCA_BUILD/examples/counter" --log "$log" --tick 20 --pad 262144 &
	p=$!
	wait_for 10 grep -q '^counter 3' "$log"
	gca-ctl checkpoint pad-job 2>&1; echo "rc $?"
	kill -9 $p; wait $p 2>/dev/null
}
export site; export -f after_reattach pad_save fill wait_for	# run by full_disk's bash

# a job under gca-exec: the CTS's job table holds it
log1=$TEST_TMP/counter1.log
gca-exec --gid fault-job -- "$counter" --log "$log1" --tick 20 &
job1=$!
on_exit "kill -9 $job1"
check "a counter runs under gca-exec" wait_for 10 reached "$log1" 3

# -- a CTS restarted on a full state disk: it stops naming the cause, and gca-site says it died --
kill -9 "$(cts_pid)"
out=$(full_disk "$state" gca-site up "$site" 2>&1); rc=$?
case "$rc $out" in
1\ *"gca-cts cts-app died at start: job table"*"No space left on device"*) pass "gca-site up on a full state disk: the CTS died at start, the cause said ($(grep 'died at start' <<<"$out" | cut -c1-150))" ;;
*) fail "gca-site up on a full state disk says the CTS died, and why" "rc $rc: $out" ;;
esac
grep -q 'error: job table .*cannot write it: No space left on device' "$site/log/cts-app.log" && pass "the CTS's log names the cause" || fail "the CTS's log names the cause" "$(grep 'error:' "$site/log/cts-app.log" | tail -2)"
[ -z "$(findmnt -rn -o TARGET | grep -F "$state")" ] && pass "no mount left behind" || fail "no mount left behind" "$(findmnt | grep -F "$state")"
check "gca-site up again, with room: the CTS starts" gca-site up "$site"
check "and the job checkpoints again once it re-attached" wait_for 15 gca-ctl checkpoint fault-job

# -- a checkpoint asked after a CTS restart, before the job re-attached (here: the job is stopped,
# so its library cannot): a retryable answer that says so, then a checkpoint once it is back --
kill -STOP $job1
kill -9 "$(cts_pid)"
check "gca-site up restarts the CTS" gca-site up "$site"
out=$(gca-ctl checkpoint fault-job 2>&1); rc=$?
case "$rc $out" in
1\ *"restarted"*"not re-attached yet"*"retry"*"(unavailable)"*) pass "before the job re-attached: unavailable, saying to retry ($(echo "$out" | head -1 | cut -c1-160))" ;;
*) fail "a checkpoint before the job re-attached is unavailable, saying to retry" "rc $rc: $out" ;;
esac
kill -CONT $job1
check "once the job runs again it re-attaches and checkpoints" wait_for 15 gca-ctl checkpoint fault-job

# -- a full outbox: the broker hears the cause, with a code a retry fits, and no image is kept --
kill -9 "$(cts_pid)"
out=$(full_disk "$state/outbox" after_reattach 2>&1)
case "$out" in
*"No space left on device writing the outbox"*"(unavailable)"*"rc 1") pass "a full outbox: the broker hears the cause, unavailable ($(grep -o 'No space[^(]*' <<<"$out" | head -1))" ;;
*) fail "a full outbox: the broker hears the cause, unavailable" "$out" ;;
esac
check "gca-site up again, with room" gca-site up "$site"

# -- an app job whose save finds no space: the broker hears why --
kill -9 "$(cts_pid)"
out=$(full_disk "$state/staging" pad_save 2>&1)
case "$out" in
*"could not save its state"*"No space left on device"*"rc 1") pass "a save with no space left: the broker hears it ($(grep -o 'could not save[^(]*' <<<"$out" | head -1))" ;;
*) fail "a save with no space left: the broker hears it" "$out" ;;
esac
check "gca-site up again, with room" gca-site up "$site"

# -- a CTS killed while a checkpoint's image is copied: the copy child finishes after it, leaving a
# folder with neither an outbox entry nor a record; the restarted CTS removes it, and keeps the
# recorded images --
log2=$TEST_TMP/counter2.log
gca-exec --gid big-job -- "$counter" --log "$log2" --tick 20 --pad 67108864 &
job2=$!
on_exit "kill -9 $job2"
wait_for 10 reached "$log2" 3
check "a checkpoint of a job with a 64 MiB image" gca-ctl checkpoint big-job
jobdir=$state/images/big-job
kept=$(ls "$jobdir")
gca-ctl checkpoint big-job >/dev/null 2>&1 &
ctl=$!
orphan=
for _ in $(seq 3000); do
	orphan=$(ls "$jobdir" 2>/dev/null | grep -vxF "$kept" | head -1)
	[ -n "$orphan" ] && break
	sleep 0.005
done
kill -9 "$(cts_pid)"
wait $ctl 2>/dev/null
if [ -n "$orphan" ]; then
	# the copy child of the killed CTS finishes on its own
	wait_for 30 sh -c "! pgrep -f -- '$site/cts-app.conf' >/dev/null"
	if [ -d "$jobdir/$orphan" ] && ! grep -q "^+ $orphan " "$state/outbox/log"; then
		pass "killed while copying: image $orphan is on disk without an outbox entry ($(ls "$jobdir/$orphan" | tr '\n' ' '))"
		check "gca-site up restarts the CTS" gca-site up "$site"
		check "the restarted CTS removes the unrecorded image folder" wait_for 20 test ! -e "$jobdir/$orphan"
		grep -q "checkpoint $orphan of big-job: its image folder has no record" "$site/log/cts-app.log" && pass "and says so in its log" || fail "and says so in its log"
		for k in $kept; do [ -d "$jobdir/$k" ] || fail "the recorded image $k is kept"; done
		[ -n "$kept" ] && pass "the recorded images are kept ($(echo $kept | wc -w))"
		n=$(gca-ctl checkpoints big-job 2>/dev/null | grep -c "$orphan")
		expect_eq "no record names it" "$n" 0
	else
		pass "killed while copying: the image $orphan did not outlive the CTS, or was recorded (nothing to check)"
		check "gca-site up restarts the CTS" gca-site up "$site"
	fi
else
	fail "a new image folder appears while the checkpoint runs" "$(ls -la "$jobdir")"
	gca-site up "$site" >/dev/null
fi
kill -9 $job2; wait $job2 2>/dev/null

# -- removals off the loop: a restore copy whose caller died (250,000 files here) is removed by the
# sweep in a child, while the CTS keeps answering on its socket (a ping every 20 ms) --
dead=$(sh -c 'echo $$')
left=$state/staging/restore-$dead-leftover
python3 - "$TEST_TMP/leftover" <<'PY'
import os, sys
for d in range(250):
    p = "%s/%d" % (sys.argv[1], d)
    os.makedirs(p)
    for f in range(1000):
        os.close(os.open("%s/%d" % (p, f), os.O_CREAT | os.O_WRONLY, 0o600))
PY
mv "$TEST_TMP/leftover" "$left"	# whole, at once: the sweep (every tick) finds it complete
out=$(python3 - "$site/run/cts-app.sock" "$left" <<'PY'
import os, socket, struct, sys, time
# {"v": 1, "t": "ping", "id": 1, "b": {}} in msgpack, framed
body = b"\x84\xa1v\x01\xa1t\xa4ping\xa2id\x01\xa1b\x80"
frame = struct.pack(">I", len(body)) + body
worst, n, t_end = 0.0, 0, time.time() + 60
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(30)
while os.path.exists(sys.argv[2]) and time.time() < t_end:
    t0 = time.time()
    s.sendall(frame)
    head = s.recv(4, socket.MSG_WAITALL)
    s.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL)
    worst = max(worst, time.time() - t0)
    n += 1
    time.sleep(0.02)
print("%d %d %s" % (n, worst * 1000, "gone" if not os.path.exists(sys.argv[2]) else "left"))
PY
)
read -r pings worst gone <<<"$out"
expect_eq "the sweep removed the dead caller's restore copy" "$gone" gone
[ "${worst:-99999}" -lt 500 ] && pass "the CTS answered all along: $pings pings, the slowest in $worst ms" || fail "the CTS answers while a big folder is removed (slowest ping under 500 ms)" "$out"

done_testing
