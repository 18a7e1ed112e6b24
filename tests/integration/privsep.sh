# gca-cts's network process (docs/ARCHITECTURE.md, "The privilege line"): everything that reads the
# network runs in gca-cts-net, as the net_user (gca), with no capabilities, no_new_privs, chrooted
# into STATE/net, read here from /proc. Its control socketpair takes net_accepted only: another
# message, or bytes that are no frame, written on the network process's own descriptor (as a
# compromised network process would), make the parent say why and start a new one; so does kill -9.
# A checkpoint acknowledged before is still there, and the next one works. A state folder made
# before the split (no STATE/net) is taken over with its images, records and bindings.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
command -v python3 >/dev/null || not_run privsep "no python3 (the control socket is written with it)"
getent passwd gca >/dev/null || useradd --system --user-group --no-create-home \
	--home-dir /nonexistent --shell /usr/sbin/nologin gca ||
	not_run privsep "no user gca, and useradd cannot make it"
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
counter=$GCA_BUILD/examples/counter
log=$site/log/cts-app.log
state=$site/cts/cts-app
cts=$(cat "$site/cts-app.pid")
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }
netpid() { pgrep -P "$cts" -x gca-cts-net | head -1; }
new_net() { p=$(netpid); [ -n "$p" ] && [ "$p" != "$1" ]; }
# send PID HOW: bytes on the network process's control socket (its fd 3), through pidfd_getfd
send() {
	python3 - "$1" "$2" <<'PY'
import ctypes, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, int(sys.argv[1]), 0)           # pidfd_open
fd = libc.syscall(438, pidfd, 3, 0) if pidfd >= 0 else -1  # pidfd_getfd
if fd < 0:
    sys.exit("pidfd_getfd: errno %d" % ctypes.get_errno())
s = socket.socket(fileno=fd)
def s_(x):
    return bytes([0xa0 | len(x)]) + x.encode()
if sys.argv[2] == "ping":     # a frame of a type the control socket does not take
    body = b"\x84" + s_("v") + b"\x01" + s_("t") + s_("ping") + s_("id") + b"\x00" + s_("b") + b"\x80"
    s.send(struct.pack(">I", len(body)) + body)
elif sys.argv[2] == "big":     # a message over the control socket's 4 KiB
    s.send(struct.pack(">I", 8192) + b"\x00" * 8192)
else:                          # bytes that are no frame
    s.send(b"\x00\x00\x10\x00garbage")
PY
}

net=$(netpid)
check "the CTS started a network process (gca-cts-net, its child)" test -n "$net"
uid=$(id -u gca)
expect_eq "it runs as the user gca (real, effective, saved, fs uid)" \
	"$(awk '$1=="Uid:"{print $2,$3,$4,$5}' "/proc/$net/status")" "$uid $uid $uid $uid"
expect_eq "with no supplementary groups" "$(awk '$1=="Groups:"{print $2}' "/proc/$net/status")" ""
for f in CapEff CapPrm CapInh CapAmb CapBnd; do
	expect_eq "$f is 0" "$(awk -v f="$f:" '$1==f{print $2}' "/proc/$net/status")" "0000000000000000"
done
expect_eq "no_new_privs is set" "$(awk '$1=="NoNewPrivs:"{print $2}' "/proc/$net/status")" "1"
case "$GCA_BUILD" in
*/san) pass "a sanitizer build runs it without its seccomp filter (skipped)" ;;
*) expect_eq "a seccomp filter holds it (Seccomp: 2)" "$(awk '$1=="Seccomp:"{print $2}' "/proc/$net/status")" "2" ;;
esac
expect_eq "its root directory is STATE/net" "$(readlink "/proc/$net/root")" "$state/net"
expect_eq "STATE/net is root's and not writable by it" "$(stat -c '%U %a' "$state/net")" "root 755"
check "the parent (root) holds no TLS socket of a peer: its TLS port is the network process's" \
	sh -c "ls -l /proc/$net/fd | grep -q socket"
expect_eq "ps names it" "$(ps -o comm= -p "$net")" "gca-cts-net"
check "the signing key is not open in it" sh -c "! ls -l /proc/$net/fd | grep -q sign-"

gid=privsep-job
clog=$TEST_TMP/counter.log
gca-exec --gid "$gid" -- "$counter" --log "$clog" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "the counter runs under gca-exec" wait_for 10 reached "$clog" 5
out=$(gca-ctl checkpoint "$gid" 2>&1) || fail "a checkpoint through the network process" "$out"
id1=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
check "checkpoint 1 is acknowledged (the GCS over the relayed link)" test -n "$id1"

# -- a message outside the allowed set, then one that is no frame --
send "$net" ping
check "a ping on the control socket: the parent says why and starts another" \
	wait_for 10 new_net "$net"
check "the log names the message" grep -q "network process $net: it sent ping, which is not net_accepted" "$log"
net=$(netpid)
sleep 0.5
send "$net" garbage
check "bytes that are no frame: refused the same way" wait_for 10 new_net "$net"
check "the log says why" grep -q "network process $net: it sent a message whose length" "$log"
net=$(netpid)
sleep 0.5
send "$net" big
check "a message over the size limit: refused the same way" wait_for 10 new_net "$net"
check "the log says why" grep -q "network process $net: it sent a message over 4096 bytes" "$log"

# -- kill -9: restarted, nothing acknowledged lost, the next checkpoint works --
net=$(netpid)
kill -9 "$net"
check "kill -9 of the network process: the parent starts another" wait_for 10 new_net "$net"
check "and says so" grep -q "network process $net: it exited" "$log"
check "checkpoint 1 is still recorded" sh -c "gca-ctl checkpoints $gid 2>&1 | grep -q $id1"
ok=0
for _ in $(seq 20); do
	out=$(gca-ctl checkpoint "$gid" 2>&1) && { ok=1; break; }
	sleep 0.5
done
[ $ok = 1 ] && pass "the next checkpoint works" || fail "the next checkpoint works" "$out"
check "the CTS itself never restarted" test "$(cat "$site/cts-app.pid")" = "$cts" -a -d "/proc/$cts"

# -- a state folder as the CTS left it before the split (no STATE/net): taken over, its images,
# records and bindings kept --
check "gca-site down" gca-site down "$site"
rm -rf "$state/net"
ls "$state/images/$gid" | sort > "$TEST_TMP/images.before"
check "gca-site up on the old state folder" gca-site up "$site"
cts=$(cat "$site/cts-app.pid")
check "it made STATE/net again and a network process runs in it" \
	sh -c "test \"\$(readlink /proc/\$(pgrep -P $cts -x gca-cts-net | head -1)/root)\" = '$state/net'"
expect_eq "the image folders are all there" "$(ls "$state/images/$gid" | sort)" "$(cat "$TEST_TMP/images.before")"
check "the binding is kept: the job re-attaches and checkpoints" wait_for 20 gca-ctl checkpoint "$gid"
kill -9 $job; wait $job 2>/dev/null
want=$(cat "$state/images/$gid/$id1/counter")
clog2=$TEST_TMP/counter2.log
gca-recover --gid "$gid" --checkpoint "$id1" -- "$counter" --log "$clog2" --tick 20 &
rec=$!
on_exit "kill -9 $rec"
check "checkpoint 1 (taken before) restores: the counter resumes" wait_for 10 reached "$clog2" $((want + 2))
expect_eq "from that image's state" "$(awk '$1=="restored"{print $2}' "$clog2")" "$want"
kill -TERM $rec; wait $rec 2>/dev/null
done_testing
