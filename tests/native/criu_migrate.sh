# criu-migrate-native: a criu job moving between two computing resources on this machine's own
# kernel (CRIU 4.1, the Debian 13 run); tests/vm/criu_migrate.sh's moves without the guests.
# timeout: 240
#
# The resources are two network namespaces on a bridge (A at .2, B at .3; the GCS at .1), each with
# a criu CTS entered with nsenter --net only (one mount namespace for all: criu would otherwise
# dump the job's mount namespace). A runs the job under gca-exec; the broker checkpoints it twice;
# the job dies on A; gca-recover on B fetches the latest checkpoint from A with a grant, verifies
# it (the record's sha256) and restores it: the job resumes at the dump point, the job entry names
# cts-b, the broker's next checkpoint goes to B; then B restores the first checkpoint by its id.
# Full dumps only: chains (criu_incremental, pre-dumps) need memory tracking, proven in qemu.
. "$GCA_TOP/tests/lib.sh"

S=criu-migrate-native
command -v criu >/dev/null || not_run $S "criu is not installed (make deps)"
[ "$(id -u)" = 0 ] || not_run $S "needs root for network namespaces and criu"
command -v ip >/dev/null && command -v nsenter >/dev/null || not_run $S "ip (iproute2) or nsenter is not installed"
criu check >/dev/null 2>&1 </dev/null || not_run $S "criu check fails on kernel $(uname -r)"
n=$(($$ % 100000))
ip netns add gcmnp$n 2>/dev/null && ip netns del gcmnp$n || not_run $S "ip netns does not work here"
for p in gca-cts gca-exec gca-recover gca-gcs gca-ctl; do
	[ -x "$GCA_BUILD/$p" ] || { fail "$GCA_BUILD/$p is built (make)"; exit 1; }
done
test_tmpdir
T=$TEST_TMP
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
job=$T/job
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$job" "$GCA_TOP/tests/vm/guest/job.c" ||
	{ fail "the test job builds"; exit 1; }

site=$T/site
on_exit "gca-site down '$site'"
GCA_SITE_HEARTBEAT=1 gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; sed 's/^/#   /' "$T/site.log"; exit 1; }
. "$site/site.env"
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAP_URI" -b "$GCA_BASE_DN" "$@" 2>/dev/null; }
attr() { awk -v a="$1:" '$1 == a { sub(/^[^:]*: /, ""); print }'; }

# ---- the network: a bridge here, one namespace per resource ----
net=10.$((100 + $$ % 50)).$((($$ / 50) % 250)).
br=gcmnb$n
declare -A ip=([a]=${net}2 [b]=${net}3)
ip link add $br type bridge && ip addr add ${net}1/24 dev $br && ip link set $br up || { fail "bridge $br"; exit 1; }
on_exit "ip link del $br"
for x in a b; do
	ns=gcmn$n$x
	ip netns add $ns && on_exit "ip netns del $ns" &&
		ip link add v$n$x type veth peer name p$n$x && ip link set v$n$x master $br up &&
		ip link set p$n$x netns $ns && ip -n $ns addr add ${ip[$x]}/24 dev p$n$x &&
		ip -n $ns link set p$n$x up && ip -n $ns link set lo up || { fail "namespace $x"; exit 1; }
done
pass "namespaces a (${ip[a]}) and b (${ip[b]}) on bridge $br (${net}1)"
# on X CMD...: CMD in resource X's network namespace (only that one), with X's CTS socket
on() { local x=$1; shift; exec nsenter --net=/run/netns/gcmn$n$x env GCA_CTS_SOCKET="$T/run/cts-$x.sock" "$@"; }

# ---- a GCS on the bridge, a criu CTS in each namespace ----
gca-pki issue "$site/pki" gcs gcs-br --host ${net}1 >/dev/null
cat > "$T/gcs-br.conf" <<CONF
name gcs-br
listen ${net}1:0
ca $site/pki/ca.crt
cert $site/pki/gcs-gcs-br.crt
key $site/pki/gcs-gcs-br.key
directory $site/gcs-directory.conf
cts_timeout 10
CONF
gca-gcs -f "$T/gcs-br.conf" --port-file "$T/gcs-br.port" >>"$T/gcs-br.log" 2>&1 &
on_exit "kill $!"
wait_for 10 test -s "$T/gcs-br.port" || { fail "gca-gcs on the bridge" "$(tail -3 "$T/gcs-br.log")"; exit 1; }
export GCA_GCS_ENDPOINT=${net}1:$(cat "$T/gcs-br.port")
mkdir -p "$T/run" && chmod 0755 "$T/run"
for x in a b; do
	gca-pki issue "$site/pki" cts cts-$x --host ${ip[$x]} >/dev/null
	gca-pki issue "$site/pki" sign cts-$x >/dev/null
	cat > "$T/cts-$x.ldif" <<LDIF
dn: cn=cts-$x,ou=cts,$GCA_BASE_DN
gcaCoreService: criu
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: TRUE
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
description: resource $x of the native criu migration suite
LDIF
	cat > "$T/cts-$x.conf" <<CONF
name cts-$x
core_service criu
descriptor $T/cts-$x.ldif
listen ${ip[$x]}:0
socket $T/run/cts-$x.sock
gcs $GCA_GCS_ENDPOINT
ca $site/pki/ca.crt
cert $site/pki/cts-cts-$x.crt
key $site/pki/cts-cts-$x.key
sign_cert $site/pki/sign-cts-$x.crt
sign_key $site/pki/sign-cts-$x.key
state $T/cts-$x
heartbeat 1
retention 10
CONF
	(on $x gca-cts -f "$T/cts-$x.conf" --port-file "$T/cts-$x.port" >>"$T/cts-$x.log" 2>&1) &
	on_exit "kill $!"
	if wait_for 15 sh -c "ldapsearch -LLL -x -H '$GCA_LDAP_URI' -b 'cn=cts-$x,ou=cts,$GCA_BASE_DN' gcaStatus | grep -q '^gcaStatus: ok'"; then
		pass "cts-$x (criu) registers from namespace $x, published ok"
	else
		fail "cts-$x registers, published ok" "$(tail -3 "$T/cts-$x.log")"; exit 1
	fi
done

child() { awk '{ print $1 }' "/proc/$1/task/$1/children" 2>/dev/null; }
after() { wait_for "$1" awk -v m="$3" 'f && /^counter/ { found = 1 } $0 == m { f = 1 } END { exit !found }' "$2"; }
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$1"; }
reap() {	# reap PID SECONDS: its status in $reaped (255: killed after SECONDS)
	local i
	for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; reaped=255; return; fi
	wait "$1"; reaped=$?
}
killtree() { local c; for c in $(child "$1"); do killtree "$c"; done; kill -9 "$1" 2>/dev/null; }

# ---- the job on A, two checkpoints by the broker ----
log=$T/job.log
(on a setsid gca-exec --gid mig-job -- "$job" --log "$log" --tick 100 --mib 4 </dev/null >>"$T/job.out" 2>&1) &
jobpid=$!
on_exit "killtree $jobpid"
if wait_for 30 grep -q ready "$log"; then pass "gca-exec on A started the job"
else fail "gca-exec on A started the job" "$(tail -3 "$T/job.out" "$T/cts-a.log")"; exit 1; fi
ids=() lo=() hi=()
for k in 1 2; do
	sleep 1
	l=$(last "$log"); t=$(date +%s.%N)
	out=$(gca-ctl checkpoint mig-job 2>&1)
	h=$(last "$log")
	id=$(echo "$out" | awk '$1 == "checkpoint" { print $2; exit }')
	ids+=("$id") lo+=("$l") hi+=("$h")
	case "$out" in *"seq $k at cts-a"*) pass "checkpoint $k on A through the GCS on the bridge: $id (counter $l..$h, $(since "$t") s)" ;;
	*) fail "checkpoint $k on A" "$out" ;; esac
done

# ---- the job dies on A; B brings it back from latest ----
init=$(child $jobpid)	# gca-exec (the subshell exec'd it), then the namespace's init
sleep 1.5	# the job counts on past checkpoint 2, so where it resumes says which state came back
kill -9 "$init"
reap $jobpid 10
killed=$(last "$log")
echo "mark killed" >> "$log"
pass "the job on A killed at counter $killed (gca-exec's status $reaped)"
t=$(date +%s.%N)
(on b setsid gca-recover --gid mig-job --checkpoint latest -- "$job" --log "$log" </dev/null >>"$T/recover1.out" 2>&1) &
rpid=$!
on_exit "killtree $rpid"
if after 60 "$log" 'mark killed'; then pass "gca-recover on B --checkpoint latest: the job runs there ($(since "$t") s)"
else fail "gca-recover on B --checkpoint latest" "$(tail -n 5 "$T/recover1.out" "$T/cts-b.log")"; fi
if grep -q "fetched checkpoint ${ids[1]} from cts-a" "$T/cts-b.log"; then
	pass "B's CTS fetched checkpoint 2 from cts-a: $(grep -o "fetched checkpoint ${ids[1]} from cts-a.*" "$T/cts-b.log" | sed 's/.*: //' | head -1)"
else
	fail "B's CTS fetched checkpoint 2 from cts-a" "$(grep -i 'fetch\|grant' "$T/cts-b.log" | tail -4)"
fi
sha=$(sha256sum "$T/cts-b/images/mig-job/${ids[1]}/manifest" 2>/dev/null | cut -d' ' -f1)
rec=$(lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=${ids[1]}))" gcaImageSha256 | attr gcaImageSha256)
expect_eq "B's copy of the image has the record's manifest sha256" "${sha:-none}" "$rec"
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
if [ -n "$r1" ] && [ "$r1" -ge $((lo[1] + 1)) ] && [ "$r1" -le $((hi[1] + 1)) ] && [ "$r1" -lt "$killed" ]; then
	pass "the job resumed on B at counter $r1: checkpoint 2's dump point (${lo[1]}..${hi[1]}), not where A lost it ($killed)"
else
	fail "the job resumed at checkpoint 2's dump point" "first counter on B $r1, dump window ${lo[1]}..${hi[1]}, killed at $killed; $(tail -3 "$T/recover1.out")"
fi
rinit=$(child $rpid)
expect_eq "the restored job runs in B's network namespace" "$(stat -L -c %i "/proc/${rinit:-0}/ns/net" 2>/dev/null)" \
	"$(stat -L -c %i /run/netns/gcmn${n}b)"
out=$(lds "(&(objectClass=gcaJob)(gcaGID=mig-job))" gcaCTSName gcaJobState)
if grep -qx "gcaCTSName: cts-b" <<<"$out" && grep -qx "gcaJobState: running" <<<"$out"; then pass "the job entry names cts-b, running"
else fail "the job entry names cts-b, running" "$out"; fi
out=$(gca-ctl checkpoint mig-job 2>&1)
case "$out" in *"seq 3 at cts-b"*) pass "the broker's next checkpoint goes to B: seq 3" ;; *) fail "checkpoint 3 at B" "$out" ;; esac
kill -TERM $rpid
reap $rpid 15
expect_eq "SIGTERM to gca-recover on B reached the job; its status 3 came back" "$reaped" 3

# ---- B restores the first checkpoint by its id ----
echo "mark recover2" >> "$log"
(on b setsid gca-recover --gid mig-job --checkpoint "${ids[0]}" -- "$job" --log "$log" </dev/null >>"$T/recover2.out" 2>&1) &
rpid=$!
on_exit "killtree $rpid"
after 60 "$log" 'mark recover2'
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark recover2/ { f = 1 }' "$log")
if [ -n "$r2" ] && [ "$r2" -ge $((lo[0] + 1)) ] && [ "$r2" -le $((hi[0] + 1)) ]; then
	pass "gca-recover on B --checkpoint <checkpoint 1's id>: resumed at counter $r2 (${lo[0]}..${hi[0]})"
else
	fail "gca-recover on B --checkpoint <checkpoint 1's id>" "first counter $r2, dump window ${lo[0]}..${hi[0]}; $(tail -n 5 "$T/recover2.out")"
fi
check "  fetched from cts-a too" grep -q "fetched checkpoint ${ids[0]} from cts-a" "$T/cts-b.log"
kill -USR1 $rpid
reap $rpid 15
expect_eq "SIGUSR1 to that gca-recover reached the job; its status 4 came back" "$reaped" 4
expect_eq "the heap pattern survived every move" "$(grep -c 'heap bad' "$log")" 0
done_testing
