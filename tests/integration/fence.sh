# One live copy per job (docs/ARCHITECTURE.md, "Fencing"): three resources of the app core service,
# each CTS in a network namespace of its own (veth pairs on a bridge), a GCS on the bridge, the site's
# slapd. (a) a job running on A is recovered on B: A's CTS stops A's copy, says so in its log, a
# subscriber hears "fenced", the job entry carries fenced=cts-a/<local id>; (b) on C, with `fence
# none`, the old copy is left running; (c) A cut off (its link down) while its job is recovered on B,
# then its link restored: A's copy is stopped then; the same with A's CTS stopped (SIGSTOP) instead;
# (d) a recovery on the same CTS while the old copy runs stops the old one.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
[ "$(id -u)" = 0 ] || not_run fence "needs root for ip netns"
probe=gcaprobe$$
ip netns add $probe 2>/dev/null && ip netns del $probe || not_run fence "ip netns does not work here"
ip link add gcabrp$$ type bridge 2>/dev/null && ip link del gcabrp$$ || not_run fence "cannot make a bridge here"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up (slapd, PKI)" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS: ldaps:// with the site CA (docs/DEPLOYMENT.md, "TLS to the directory")
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
counter=$GCA_BUILD/examples/counter
T=$TEST_TMP
mkdir -p "$T/run" && chmod 0755 "$T/run"

# ---- the network: a bridge in this namespace, one veth pair per resource ----
n=$(( $$ % 100000 ))
net=10.$(( 200 + ($$ + 7) % 50 )).$(( ($$ / 50) % 250 )).
br=gcafb$n
ip link add $br type bridge && ip addr add ${net}1/24 dev $br && ip link set $br up
on_exit "ip link del $br"
mkns() {
	local ns=gcaf$n$1 ip=${net}$2
	ip netns add $ns || return 1
	on_exit "ip netns del $ns"
	ip link add fv$n$1 type veth peer name fp$n$1 &&
	ip link set fv$n$1 master $br up &&
	ip link set fp$n$1 netns $ns &&
	ip -n $ns addr add $ip/24 dev fp$n$1 &&
	ip -n $ns link set fp$n$1 up && ip -n $ns link set lo up
}
for r in a:2 b:3 c:4; do
	mkns ${r%%:*} ${r#*:} && pass "namespace ${r%%:*} at ${net}${r#*:}" || fail "namespace ${r%%:*}"
done

# ---- a GCS on the bridge (the site's directory) ----
gca-pki issue "$site/pki" gcs gcs-f --host ${net}1 >/dev/null
cat > "$T/gcsf.conf" <<CONF
name gcs-f
listen ${net}1:0
ca $site/pki/ca.crt
cert $site/pki/gcs-gcs-f.crt
key $site/pki/gcs-gcs-f.key
directory $site/gcs-directory.conf
cts_timeout 3
CONF
gca-gcs -f "$T/gcsf.conf" --port-file "$T/gcsf.port" >>"$T/gcsf.log" 2>&1 &
gcsf=$!
on_exit "kill $gcsf"
check "gca-gcs on the bridge" wait_for 10 test -s "$T/gcsf.port"
export GCA_GCS_ENDPOINT=${net}1:$(cat "$T/gcsf.port")

bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" -b "$GCA_BASE_DN" "$@"; }

declare -A ctspid ctsip=([a]=${net}2 [b]=${net}3 [c]=${net}4)
# cts_start LETTER [extra cts.conf lines]
cts_start() {
	local x=$1 extra=${2:-}
	[ -f "$site/pki/cts-cts-$x.crt" ] || gca-pki issue "$site/pki" cts cts-$x --host ${ctsip[$x]} >/dev/null
	[ -f "$site/pki/sign-cts-$x.crt" ] || gca-pki issue "$site/pki" sign cts-$x >/dev/null
	cat > "$T/cts-$x.ldif" <<LDIF
dn: cn=cts-$x,ou=cts,$GCA_BASE_DN
gcaCoreService: app
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: TRUE
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
description: resource $x of the fence test
LDIF
	cat > "$T/cts-$x.conf" <<CONF
name cts-$x
core_service app
descriptor $T/cts-$x.ldif
listen ${ctsip[$x]}:0
socket $T/run/cts-$x.sock
gcs $GCA_GCS_ENDPOINT
ca $site/pki/ca.crt
cert $site/pki/cts-cts-$x.crt
key $site/pki/cts-cts-$x.key
sign_cert $site/pki/sign-cts-$x.crt
sign_key $site/pki/sign-cts-$x.key
state $T/cts-$x
heartbeat 1
$extra
CONF
	rm -f "$T/cts-$x.port"
	ip netns exec gcaf$n$x gca-cts -f "$T/cts-$x.conf" --port-file "$T/cts-$x.port" >>"$T/cts-$x.log" 2>&1 &
	ctspid[$x]=$!
	on_exit "kill -CONT ${ctspid[$x]}; kill ${ctspid[$x]}"
	wait_for 10 test -s "$T/cts-$x.port" &&
	wait_for 15 sh -c "ldapsearch -LLL -x -H '$GCA_LDAPS_URI' -D '$bind' -w '$pw' -b 'cn=cts-$x,ou=cts,$GCA_BASE_DN' gcaStatus gcaEndpoint | grep -q '^gcaEndpoint: ${ctsip[$x]}:$(cat "$T/cts-$x.port")'"
}
on() { local x=$1; shift; exec ip netns exec gcaf$n$x env GCA_CTS_SOCKET="$T/run/cts-$x.sock" "$@"; }

cts_start b && pass "cts-b starts" || fail "cts-b starts" "$(tail -3 "$T/cts-b.log")"
# A's images are replicated to B, so that B can recover A's job while A is cut off
cts_start a "fence_grace 2s
replicas cts-b@${net}3:$(cat "$T/cts-b.port")" && pass "cts-a starts (fence kill, the default; replicas on B)" || fail "cts-a starts" "$(tail -3 "$T/cts-a.log")"
cts_start c "fence none" && pass "cts-c starts with fence none" || fail "cts-c starts" "$(tail -3 "$T/cts-c.log")"

# a subscriber of every event, as a broker
gca-ctl --json subscribe > "$T/sub" 2>/dev/null &
sub=$!
on_exit "kill $sub"
sleep 0.5

last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
props() { lds "(&(objectClass=gcaJob)(gcaGID=$1))" gcaProperty gcaCTSName; }
# start X GID LOG: a counter under gca-exec on X, checkpointed once; sets $wrapper and $job
start() {
	on $1 gca-exec --gid "$2" -- "$counter" --log "$3" --tick 20 &
	wrapper=$!
	on_exit "kill -9 $wrapper"
	wait_for 10 reached "$3" 3 || return 1
	job=$(pgrep -P $wrapper)
	gca-ctl checkpoint "$2" >/dev/null 2>&1
}
# recover X GID LOG: gca-recover on X from the latest checkpoint; sets $rec
recover() {
	on $1 gca-recover --gid "$2" --checkpoint latest -- "$counter" --log "$3" --tick 20 &
	rec=$!
	on_exit "kill -TERM $rec"
	wait_for 20 reached "$3" 1
}

# ---- (a) recovered on B while A's copy runs: A's copy is stopped ----
start a fa "$T/a1.log" && pass "(a) a job runs on A, checkpointed" || fail "(a) job on A" "$(tail -3 "$T/cts-a.log")"
local_a=$(lds "(&(objectClass=gcaJob)(gcaGID=fa))" gcaLocalId | awk '$1=="gcaLocalId:"{print $2}')
recover b fa "$T/b1.log" && pass "(a) gca-recover on B: the job runs there" || fail "(a) recovery on B" "$(tail -3 "$T/cts-b.log")"
check "(a) A's copy is stopped (its wrapper exits)" wait_for 10 gone $wrapper
gone $wrapper || kill -9 $wrapper	# not stopped: bounded all the same
wait $wrapper 2>/dev/null; rc=$?
expect_eq "(a) A's wrapper exits with its job's status on SIGTERM (the counter exits 0)" "$rc" 0
gone "$job" && pass "(a) A's job process is gone" || fail "(a) A's job process is gone" "$(ps -o pid,stat,comm -p "$job")"
grep -q "job fa (pid $job): the GCS says GID fa moved to CTS cts-b; stopping its copy here: SIGTERM" "$T/cts-a.log" &&
	pass "(a) A's log says why and how it stopped it" || fail "(a) A's log" "$(grep fa "$T/cts-a.log" | tail -3)"
check "(a) a subscriber hears \"fenced\" for fa at cts-a" wait_for 10 grep -q '"event": "fenced", "gid": "fa", "cts": "cts-a"' "$T/sub"
out=$(props fa)
grep -qx "gcaProperty: fenced=cts-a/$local_a" <<<"$out" && grep -qx "gcaCTSName: cts-b" <<<"$out" &&
	pass "(a) the job entry: fenced=cts-a/$local_a, still bound to cts-b" || fail "(a) the job entry says so" "$out"
kill -0 $rec 2>/dev/null && pass "(a) B's copy runs on" || fail "(a) B's copy runs on"
n0=$(last_count "$T/b1.log"); wait_for 5 reached "$T/b1.log" $((n0 + 3)) && pass "(a) and counts" || fail "(a) B counts"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- (b) fence none on C: the old copy is left running ----
start c fc "$T/c1.log" && pass "(b) a job runs on C (fence none)" || fail "(b) job on C"
cwrapper=$wrapper
recover b fc "$T/b2.log" && pass "(b) recovered on B" || fail "(b) recovery on B"
check "(b) C's log says it leaves its copy" wait_for 10 grep -q "job fc (pid $job): the GCS says GID fc moved to CTS cts-b; its copy here is left running (fence none)" "$T/cts-c.log"
sleep 1
n0=$(last_count "$T/c1.log"); wait_for 5 reached "$T/c1.log" $((n0 + 3)) && kill -0 $cwrapper 2>/dev/null &&
	pass "(b) C's copy still runs and counts" || fail "(b) C's copy still runs"
grep -q '"event": "fenced", "gid": "fc"' "$T/sub" && fail "(b) no fenced event for fc" "$(grep fc "$T/sub")" || pass "(b) no fenced event for fc"
kill -TERM $rec $cwrapper; wait $rec $cwrapper 2>/dev/null

# ---- (c) A cut off while the job is recovered on B; A's link back: A's copy is stopped then ----
replicated() { lds "(&(objectClass=gcaCheckpoint)(gcaGID=$1))" gcaLocation | grep -q "^gcaLocation: cts-b"; }
start a fl "$T/a2.log" && pass "(c) a job runs on A" || fail "(c) job on A"
awrapper=$wrapper ajob=$job
check "(c) its checkpoint is replicated on B" wait_for 15 replicated fl
ip -n gcaf${n}a link set fp${n}a down
check "(c) the GCS marks cts-a down (link cut)" wait_for 15 sh -c "ldapsearch -LLL -x -H '$GCA_LDAPS_URI' -D '$bind' -w '$pw' -b 'cn=cts-a,ou=cts,$GCA_BASE_DN' gcaStatus | grep -q 'gcaStatus: down'"
recover b fl "$T/b3.log" && pass "(c) recovered on B while A is cut off" || fail "(c) recovery on B" "$(tail -3 "$T/cts-b.log")"
sleep 2
kill -0 $ajob 2>/dev/null && pass "(c) A's copy still runs while A cannot be told" || fail "(c) A's copy runs while cut off"
ip -n gcaf${n}a link set fp${n}a up
check "(c) once A's link is back, A's copy is stopped" wait_for 30 gone $awrapper
grep -q "job fl (pid $ajob): the directory binds GID fl to CTS cts-b" "$T/cts-a.log" &&
	pass "(c) A's log: the move was found by asking the GCS" || fail "(c) A's log" "$(grep -e fl -e 'answers again' "$T/cts-a.log" | tail -4)"
check "(c) the subscriber hears \"fenced\" for fl" wait_for 10 grep -q '"event": "fenced", "gid": "fl", "cts": "cts-a"' "$T/sub"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- (c') the same with A's CTS stopped (SIGSTOP) instead ----
start a fs "$T/a3.log" && pass "(c') a job runs on A" || fail "(c') job on A"
awrapper=$wrapper ajob=$job
check "(c') its checkpoint is replicated on B" wait_for 15 replicated fs
kill -STOP ${ctspid[a]}
check "(c') the GCS marks the stopped cts-a down" wait_for 15 sh -c "ldapsearch -LLL -x -H '$GCA_LDAPS_URI' -D '$bind' -w '$pw' -b 'cn=cts-a,ou=cts,$GCA_BASE_DN' gcaStatus | grep -q 'gcaStatus: down'"
recover b fs "$T/b4.log" && pass "(c') recovered on B while A's CTS is stopped" || fail "(c') recovery on B"
kill -0 $ajob 2>/dev/null && pass "(c') A's copy runs while its CTS is stopped" || fail "(c') A's copy runs"
kill -CONT ${ctspid[a]}
check "(c') A's CTS continues and stops A's copy" wait_for 20 gone $awrapper
grep -q "job fs (pid $ajob): the directory binds GID fs to CTS cts-b" "$T/cts-a.log" &&
	pass "(c') A's log: the move was found by asking the GCS" || fail "(c') A's log" "$(grep -e fs -e 'answers again' "$T/cts-a.log" | tail -4)"
check "(c') the subscriber hears \"fenced\" for fs" wait_for 10 grep -q '"event": "fenced", "gid": "fs", "cts": "cts-a"' "$T/sub"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- (d) recovered on the same CTS while the old copy runs ----
start b fd "$T/b5.log" && pass "(d) a job runs on B" || fail "(d) job on B"
bwrapper=$wrapper
recover b fd "$T/b6.log" && pass "(d) gca-recover on B itself while it runs" || fail "(d) recovery on B" "$(tail -3 "$T/cts-b.log")"
check "(d) the old copy on B is stopped" wait_for 10 gone $bwrapper
kill -0 $rec 2>/dev/null && pass "(d) the recovered copy runs on" || fail "(d) the recovered copy runs on"
grep -q "job fd (pid [0-9]*): GID fd was recovered on this CTS as pid" "$T/cts-b.log" && pass "(d) B's log says why" || fail "(d) B's log" "$(grep fd "$T/cts-b.log" | tail -3)"
kill -TERM $rec; wait $rec 2>/dev/null

done_testing
