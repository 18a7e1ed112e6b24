# Recovery on another resource (issue 10): three or four CTSes of the app core service, each in a
# network namespace of its own (veth pairs on a bridge, addresses picked here), a GCS on the bridge,
# the site's slapd. A job checkpointed on A comes back on B (the image fetched over mTLS with a
# grant, the connection broken once on purpose and resumed), from the latest and from a chosen
# checkpoint; A coming back neither keeps nor steals the GID, and a periodic job it watched records
# nothing once the GID moved (its old copy stopped there); a CTS with gcaMigration FALSE refuses; a flipped byte and two swapped
# chunks in the holder's image are refused before restore, a store edited consistently is refused
# where it was taken, and a bad copy at one holder falls back to the next; retention's expiry
# survives a GCS that is away; gca-ctl gc names the CTSes it could not ask; an image A compressed
# (compress zstd) is restored on B, which does not compress.
# timeout: 300
. "$GCA_TOP/tests/lib.sh"
[ "$(id -u)" = 0 ] || not_run transfer "needs root for ip netns"
probe=gcaprobe$$
ip netns add $probe 2>/dev/null && ip netns del $probe || not_run transfer "ip netns does not work here"
ip link add gcabrp$$ type bridge 2>/dev/null && ip link del gcabrp$$ || not_run transfer "cannot make a bridge here"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up (slapd, PKI)" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
site_gcs=$GCA_GCS_ENDPOINT	# the site's own GCS, on 127.0.0.1
counter=$GCA_BUILD/examples/counter
T=$TEST_TMP
mkdir -p "$T/run" && chmod 0755 "$T/run"

# ---- the network: a bridge in this namespace, one veth pair per resource ----
n=$(( $$ % 100000 ))
net=10.$(( 200 + $$ % 50 )).$(( ($$ / 50) % 250 )).
br=gcabr$n
ip link add $br type bridge && ip addr add ${net}1/24 dev $br && ip link set $br up
on_exit "ip link del $br"
# mkns LETTER HOSTNUMBER: namespace gca<n><L> with address ${net}HOSTNUMBER
mkns() {
	local ns=gca$n$1 ip=${net}$2
	ip netns add $ns || return 1
	on_exit "ip netns del $ns"
	ip link add v$n$1 type veth peer name p$n$1 &&
	ip link set v$n$1 master $br up &&
	ip link set p$n$1 netns $ns &&
	ip -n $ns addr add $ip/24 dev p$n$1 &&
	ip -n $ns link set p$n$1 up && ip -n $ns link set lo up
}
# (not under check: its on_exit must be this shell's)
for r in a:2 b:3 r:4 c:5; do
	mkns ${r%%:*} ${r#*:} && pass "namespace ${r%%:*} at ${net}${r#*:}" || fail "namespace ${r%%:*}"
done

# ---- a GCS on the bridge (the site's directory) ----
gca-pki issue "$site/pki" gcs gcs-2 --host ${net}1 >/dev/null
cat > "$T/gcs2.conf" <<CONF
name gcs-2
listen ${net}1:0
ca $site/pki/ca.crt
cert $site/pki/gcs-gcs-2.crt
key $site/pki/gcs-gcs-2.key
directory $site/gcs-directory.conf
cts_timeout 5
CONF
gca-gcs -f "$T/gcs2.conf" --port-file "$T/gcs2.port" >>"$T/gcs2.log" 2>&1 &
gcs2=$!
on_exit "kill $gcs2"
check "gca-gcs on the bridge" wait_for 10 test -s "$T/gcs2.port"
export GCA_GCS_ENDPOINT=${net}1:$(cat "$T/gcs2.port")

bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
lds() { ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" -b "$GCA_BASE_DN" "$@"; }
has() { local out=$1 l; shift; for l in "$@"; do grep -qxF -- "$l" <<<"$out" || return 1; done; }

# ---- the CTSes: cts-X in namespace X ----
declare -A ctspid ctsip=([a]=${net}2 [b]=${net}3 [r]=${net}4 [c]=${net}5)
# cts_start LETTER MIGRATION [extra cts.conf lines]
cts_start() {
	local x=$1 mig=$2 extra=${3:-}
	[ -f "$site/pki/cts-cts-$x.crt" ] || gca-pki issue "$site/pki" cts cts-$x --host ${ctsip[$x]} >/dev/null
	[ -f "$site/pki/sign-cts-$x.crt" ] || gca-pki issue "$site/pki" sign cts-$x >/dev/null
	cat > "$T/cts-$x.ldif" <<LDIF
dn: cn=cts-$x,ou=cts,$GCA_BASE_DN
gcaCoreService: app
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: $mig
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
description: resource $x of the transfer test
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
retention 10
metrics_listen ${ctsip[$x]}:9464
$extra
CONF
	rm -f "$T/cts-$x.port"
	ip netns exec gca$n$x env GCA_TRANSFER_BREAK_AFTER=${BREAK:-0} gca-cts -f "$T/cts-$x.conf" \
		--port-file "$T/cts-$x.port" >>"$T/cts-$x.log" 2>&1 &
	ctspid[$x]=$!
	on_exit "kill ${ctspid[$x]}"
	wait_for 10 test -s "$T/cts-$x.port" &&
	wait_for 15 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'cn=cts-$x,ou=cts,$GCA_BASE_DN' gcaStatus gcaEndpoint | grep -q '^gcaEndpoint: ${ctsip[$x]}:$(cat "$T/cts-$x.port")'"
}
# on X CMD...: execs CMD in namespace X with that resource's CTS socket (use it with & or in $(...))
on() { local x=$1; shift; exec ip netns exec gca$n$x env GCA_CTS_SOCKET="$T/run/cts-$x.sock" "$@"; }

cts_start a TRUE && pass "cts-a starts in namespace a and registers" || fail "cts-a starts" "$(tail -3 "$T/cts-a.log")"
BREAK=1000000 cts_start b TRUE && pass "cts-b starts in namespace b (its fetches break once after 1 MB)" || fail "cts-b starts" "$(tail -3 "$T/cts-b.log")"
cts_start r TRUE && pass "cts-r (a replica) starts in namespace r" || fail "cts-r starts" "$(tail -3 "$T/cts-r.log")"
cts_start c FALSE && pass "cts-c starts in namespace c with gcaMigration FALSE" || fail "cts-c starts" "$(tail -3 "$T/cts-c.log")"
check "namespace b reaches cts-a's endpoint over the bridge" ip netns exec gca${n}b bash -c "exec 3<>/dev/tcp/${net}2/$(cat "$T/cts-a.port")"
out=$(lds "(cn=cts-c)" gcaMigration)
has "$out" "gcaMigration: FALSE" && pass "brokers see cts-c's gcaMigration FALSE in the directory" || fail "gcaMigration FALSE published" "$out"

# ---- a job on A, four checkpoints ----
gid='moving job (1)'
gidf='moving job \281\29'
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }
pad=$((3 * 1024 * 1024 + 12345))
log1=$T/c1.log
on a gca-exec --gid "$gid" -- "$counter" --log "$log1" --tick 20 --pad $pad &
job1=$!
on_exit "kill -9 $job1"
check "the counter runs on A" wait_for 10 reached "$log1" 5
imgdir() { echo "$T/cts-$1/images/$(printf %s "$gid" | python3 -c 'import sys,re; print(re.sub(r"[^A-Za-z0-9_-]", lambda m: "%%%02X" % ord(m.group()), sys.stdin.read()))')/$2"; }
ids=() saved=()
for k in 1 2 3 4; do
	n0=$(last_count "$log1"); wait_for 10 reached "$log1" $((n0 + 3))
	out=$(gca-ctl checkpoint "$gid" 2>&1)
	case "$out" in *"seq $k at cts-a"*) pass "checkpoint $k on A through the GCS on the bridge" ;; *) fail "checkpoint $k on A" "$out" ;; esac
	id=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
	ids+=("$id"); saved+=("$(cat "$(imgdir a "$id")/counter" 2>/dev/null)")
done
kill -9 $job1; wait $job1 2>/dev/null
check "the job entry says finished after the job died on A" wait_for 10 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaGID=$gidf)' gcaJobState | grep -q 'gcaJobState: finished'"

# ---- recovery on B from the latest: fetched from A, the connection broken once, resumed ----
# (a folder left in B's incoming/ by someone else, open to all and holding junk, is not used)
mkdir -p "$T/cts-b/incoming/${ids[3]}" && chmod 0777 "$T/cts-b/incoming/${ids[3]}" &&
	echo junk > "$T/cts-b/incoming/${ids[3]}/pad"
log2=$T/c2.log
t0=$(date +%s%N)
on b gca-recover --gid "$gid" --checkpoint latest -- "$counter" --log "$log2" --tick 20 --pad $pad &
rec=$!
on_exit "kill -TERM $rec"	# passed on to its job: -9 would orphan it
check "gca-recover on B --checkpoint latest: the counter resumes there" wait_for 20 reached "$log2" $((saved[3] + 3))
echo "# recovery on B (fetch of $(du -sk "$(imgdir a "${ids[3]}")" | cut -f1) KiB, verify, restore): $(( ($(date +%s%N) - t0) / 1000000 )) ms until the counter ran on"
expect_eq "B restored the state of checkpoint 4" "$(awk '$1=="restored"{print $2}' "$log2")" "${saved[3]}"
# (bash's /dev/tcp, not curl: make deps installs no curl)
m=$( (on b bash -c "exec 3<>/dev/tcp/${ctsip[b]}/9464 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3") | grep '^gca_cts_image_fetches_total{outcome="ok"} ')
[ "${m##* }" -ge 1 ] 2>/dev/null && pass "B's metrics count the fetch: $m" || fail "B's gca_cts_image_fetches_total" "$m"
grep -q "resumes at byte" "$T/cts-b.log" && pass "the broken fetch resumed at an offset: $(grep -o 'pad resumes at byte [0-9]* of [0-9]*' "$T/cts-b.log" | head -1)" || fail "the fetch resumed" "$(grep -i fetch "$T/cts-b.log" | tail -5)"
sha=$(sha256sum "$(imgdir b "${ids[3]}")/manifest" 2>/dev/null | cut -d' ' -f1)
out=$(lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=${ids[3]}))" gcaImageSha256)
has "$out" "gcaImageSha256: $sha" && pass "B's copy has the record's manifest sha256" || fail "B's copy matches the record" "$sha / $out"
cmp -s "$(imgdir a "${ids[3]}")/pad" "$(imgdir b "${ids[3]}")/pad" && pass "and the same bytes as A's" || fail "same bytes"
[ -z "$(ls -A "$T/cts-b/incoming" 2>/dev/null)" ] && pass "nothing left in B's incoming folder" || fail "incoming empty" "$(ls -la "$T/cts-b/incoming")"
d=$(imgdir b "${ids[3]}")
expect_eq "B's fetched image folder is 0700 and the CTS's (docs/DESIGN.md, Image store safety)" "$(stat -c '%a %u' "$d")" "700 $(id -u)"
expect_eq "and every file in it 0600, every folder 0700, all the CTS's" "$(find "$d" \( -type f ! -perm 600 \) -o \( -type d ! -perm 700 \) -o ! -user "$(id -u)" | wc -l)" 0
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gidf))" gcaCTSName gcaJobState)
has "$out" "gcaCTSName: cts-b" "gcaJobState: running" && pass "the job entry names cts-b, running" || fail "the job entry names cts-b" "$out"
out=$(gca-ctl checkpoint "$gid" 2>&1)
case "$out" in *"seq 5 at cts-b"*) pass "a broker's checkpoint now goes to B: seq 5" ;; *) fail "checkpoint at B" "$out" ;; esac

# ---- A comes back: it neither keeps nor steals the GID ----
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null
cts_start a TRUE && pass "cts-a restarts" || fail "cts-a restarts" "$(tail -3 "$T/cts-a.log")"
sleep 3
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gidf))" gcaCTSName gcaJobState)
has "$out" "gcaCTSName: cts-b" "gcaJobState: running" && pass "after A's restart the job entry still names cts-b" || fail "A did not steal the GID" "$out"
out=$(gca-ctl checkpoint "$gid" 2>&1)
case "$out" in *"seq 6 at cts-b"*) pass "and checkpoints still go to B: seq 6" ;; *) fail "checkpoint still at B" "$out" ;; esac

# ---- recovery on B from a chosen (the first) checkpoint ----
kill -TERM $rec; wait $rec 2>/dev/null
log3=$T/c3.log
on b gca-recover --gid "$gid" --checkpoint "${ids[0]}" -- "$counter" --log "$log3" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover on B --checkpoint <first id>: it resumes" wait_for 20 reached "$log3" $((saved[0] + 2))
expect_eq "from the first checkpoint's state" "$(awk '$1=="restored"{print $2}' "$log3")" "${saved[0]}"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- gcaMigration FALSE: cts-c refuses ----
out=$(on c gca-recover --gid "$gid" --checkpoint "${ids[1]}" -- touch "$T/started-c" 2>&1); rc=$?
case "$rc $out" in "1 "*"gcaMigration FALSE"*) pass "cts-c refuses: $(echo "$out" | head -1 | cut -c1-150)" ;; *) fail "cts-c refuses" "$rc $out" ;; esac
[ ! -e "$T/started-c" ] && pass "and the job did not start" || fail "the job did not start on c"

# ---- tampered images at the holder are refused before restore ----
f=$(imgdir a "${ids[1]}")/pad
printf '\x5a' | dd of="$f" bs=1 seek=2000000 conv=notrunc status=none	# one byte, same size
out=$(on b gca-recover --gid "$gid" --checkpoint "${ids[1]}" -- touch "$T/started-1" 2>&1); rc=$?
case "$rc $out" in "1 "*"pad"*"sha256"*) pass "a flipped byte is refused: $(echo "$out" | head -1 | cut -c1-160)" ;; *) fail "flipped byte refused" "$rc $out" ;; esac
[ ! -e "$T/started-1" ] && [ ! -e "$(imgdir b "${ids[1]}")" ] && pass "no job started, no image kept on B" || fail "nothing kept after the flipped byte"
f=$(imgdir a "${ids[2]}")/pad
python3 - "$f" <<'PY'
import sys
p = sys.argv[1]; c = 512 * 1024
b = bytearray(open(p, 'rb').read())
b[0:c], b[c:2*c] = b[c:2*c], b[0:c]
open(p, 'r+b').write(b)
PY
out=$(on b gca-recover --gid "$gid" --checkpoint "${ids[2]}" -- touch "$T/started-2" 2>&1); rc=$?
case "$rc $out" in "1 "*"pad"*"sha256"*) pass "two swapped chunks are refused: $(echo "$out" | head -1 | cut -c1-160)" ;; *) fail "swapped chunks refused" "$rc $out" ;; esac
[ ! -e "$T/started-2" ] && [ ! -e "$(imgdir b "${ids[2]}")" ] && pass "no job started, no image kept on B" || fail "nothing kept after the swapped chunks"

# ---- replication: A copies each image to R; A stopped, B recovers from R ----
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null
cts_start a TRUE "replicas cts-r@${net}4:$(cat "$T/cts-r.port")" && pass "cts-a restarts with replicas cts-r" || fail "cts-a restarts with a replica" "$(tail -3 "$T/cts-a.log")"
gid2=replicated-job
log4=$T/c4.log
on a gca-exec --gid $gid2 -- "$counter" --log "$log4" --tick 20 --pad 1000000 &
job2=$!
on_exit "kill -9 $job2"
check "a second job runs on A" wait_for 10 reached "$log4" 5
rids=() rsaved=()
for k in 1 2; do
	n0=$(last_count "$log4"); wait_for 10 reached "$log4" $((n0 + 3))
	out=$(gca-ctl checkpoint $gid2 2>&1)
	id=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
	rids+=("$id")
	rsaved+=("$(cat "$T/cts-a/images/$gid2/$id/counter" 2>/dev/null)")
	locs() { lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$1))" gcaLocation | awk '/^gcaLocation/{print $2}' | sort | tr '\n' ' '; }
	check "checkpoint $k of $gid2: the record lists cts-a and cts-r" wait_for 15 sh -c "[ \"\$(ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=$id)' gcaLocation | awk '/^gcaLocation/{print \$2}' | sort | tr '\n' ' ')\" = 'cts-a cts-r ' ]"
	cmp -s "$T/cts-a/images/$gid2/$id/pad" "$T/cts-r/images/$gid2/$id/pad" && pass "R's copy has A's bytes" || fail "R's copy" "$(ls -la "$T/cts-r/images/$gid2" 2>&1)"
done
kill -9 $job2; wait $job2 2>/dev/null
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null
pass "A is stopped (CTS and job)"
log5=$T/c5.log
on b gca-recover --gid $gid2 --checkpoint latest -- "$counter" --log "$log5" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover on B --checkpoint latest with A stopped: it resumes" wait_for 20 reached "$log5" $((rsaved[1] + 2))
expect_eq "from the state of the latest checkpoint" "$(awk '$1=="restored"{print $2}' "$log5")" "${rsaved[1]}"
grep -q "fetched checkpoint ${rids[1]} from cts-r" "$T/cts-b.log" && pass "B fetched it from the replica cts-r" || fail "B fetched from cts-r" "$(grep -i fetch "$T/cts-b.log" | tail -3)"
check "the record now lists cts-a, cts-b and cts-r" wait_for 10 sh -c "ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=${rids[1]})' gcaLocation | grep -c '^gcaLocation' | grep -qx 3"
kill -TERM $rec; wait $rec 2>/dev/null
log6=$T/c6.log
on b gca-recover --gid $gid2 --checkpoint "${rids[0]}" -- "$counter" --log "$log6" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover on B from the first id with A stopped" wait_for 20 reached "$log6" $((rsaved[0] + 2))
expect_eq "from the first checkpoint's state" "$(awk '$1=="restored"{print $2}' "$log6")" "${rsaved[0]}"
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gid2))" gcaCTSName gcaJobState)
has "$out" "gcaCTSName: cts-b" "gcaJobState: running" && pass "the job entry names cts-b" || fail "job entry names cts-b" "$out"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- a CTS that lost its job: A SIGKILLed while its periodic job lives, recovered on B, A back ----
cts_start a TRUE "replicas cts-r@${net}4:$(cat "$T/cts-r.port")" && pass "cts-a restarts with replicas cts-r" || fail "cts-a restarts" "$(tail -3 "$T/cts-a.log")"
gid7=orphan-job
log16=$T/c16.log
on a gca-exec --gid $gid7 --checkpoint-every 1s -- "$counter" --log "$log16" --tick 20 &
job7=$!
on_exit "kill -9 $job7"
copied() { lds "(&(objectClass=gcaCheckpoint)(gcaGID=$gid7)(gcaLocation=cts-r))" gcaCheckpointId | awk '/^gcaCheckpointId/{print $2}' | head -1; }
has_copy() { [ -n "$(copied)" ]; }
by_a() { lds "(&(objectClass=gcaCheckpoint)(gcaGID=$gid7)(gcaCTSName=cts-a))" dn | grep -c '^dn:'; }
check "a periodic checkpoint of $gid7 on A, copied to R" wait_for 20 has_copy
kill -9 ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null
kill -0 $job7 && pass "A's CTS SIGKILLed, its job lives on" || fail "the job on A lives"
job7c=$(pgrep -P $job7)
cid=$(copied)
log17=$T/c17.log
on b gca-recover --gid $gid7 --checkpoint "$cid" -- "$counter" --log "$log17" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "recovered on B (from R's copy)" wait_for 20 grep -q "^restored" "$log17"
na=$(by_a)
cts_start a TRUE "replicas cts-r@${net}4:$(cat "$T/cts-r.port")" && pass "cts-a restarts, the old job still alive there" || fail "cts-a restarts" "$(tail -3 "$T/cts-a.log")"
# (the job's pid is gca-exec's child; A asks the GCS about its jobs once registered, docs/ARCHITECTURE.md
# "Fencing", so the old copy is stopped before a periodic checkpoint of it is even tried)
check "A learns from the GCS that $gid7 moved, stops watching it" wait_for 20 grep -q "job $gid7 (pid $job7c) is no longer watched here: the directory binds GID $gid7 to CTS cts-b" "$T/cts-a.log"
check "and stops A's old copy (one live copy)" wait_for 10 sh -c "! kill -0 $job7 2>/dev/null"
n1=$(grep -c "of $gid7 refused by the GCS" "$T/cts-a.log")
sleep 2.5	# two periods: no checkpoint of it is tried any more
expect_eq "no record of $gid7 by cts-a since the recovery" "$(by_a)" "$na"
expect_eq "and A tries no more checkpoints of it" "$(grep -c "of $gid7 refused by the GCS" "$T/cts-a.log")" "$n1"
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gid7))" gcaCTSName)
has "$out" "gcaCTSName: cts-b" && pass "the job entry still names cts-b" || fail "the job entry names cts-b" "$out"
orphans=0
for d in "$T/cts-a/images/$gid7"/*/; do
	[ "$(lds "(gcaCheckpointId=$(basename "$d"))" dn | grep -c '^dn:')" = 1 ] || orphans=$((orphans + 1))
done
expect_eq "every image of $gid7 left on A has its record (the refused one was removed)" "$orphans" 0
# A's outbox entries: its log's "+ name ..." lines without a later "- name" (cts/outbox.c)
a_outbox() { awk '$1=="+"{p[$2]=1} $1=="-"{delete p[$2]} END{for (k in p) print k}' "$T/cts-a/outbox/log" 2>/dev/null; }
[ -z "$(a_outbox)" ] && ! grep -q " $gid7\$" "$T/cts-a/jobs" && pass "A's outbox is empty and its job table no longer lists $gid7" || fail "A forgot the job" "$(a_outbox; cat "$T/cts-a/jobs")"
kill -9 $job7; kill -TERM $rec; wait $job7 $rec 2>/dev/null	# gca-recover passes TERM to its counter (-9 would orphan it)
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null

# ---- a recovery on B while A and its job run: the GCS tells A at once (job_moved) ----
cts_start a TRUE "replicas cts-r@${net}4:$(cat "$T/cts-r.port")" && pass "cts-a restarts" || fail "cts-a restarts" "$(tail -3 "$T/cts-a.log")"
gid8=moved-live-job
log18=$T/c18.log
on a gca-exec --gid $gid8 --checkpoint-every 5s -- "$counter" --log "$log18" --tick 20 &
job8=$!
on_exit "kill -9 $job8"
by_a8() { lds "(&(objectClass=gcaCheckpoint)(gcaGID=$gid8)(gcaCTSName=cts-a))" dn | grep -c '^dn:'; }
has_a8() { [ "$(by_a8)" -ge 1 ]; }
check "a periodic checkpoint of $gid8 on A" wait_for 20 has_a8
job8c=$(pgrep -P $job8)	# the job: gca-exec's child
log19=$T/c19.log
on b gca-recover --gid $gid8 --checkpoint latest -- "$counter" --log "$log19" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "recovered on B while A and its job run" wait_for 20 grep -q "^restored" "$log19"
wait_for 10 grep -q "job $gid8 (pid $job8c) is no longer watched here: the GCS says GID $gid8 moved to CTS cts-b" "$T/cts-a.log" &&
	pass "A is told by the GCS, not by a refused record, and stops watching its process" ||
	fail "A is told by the GCS, not by a refused record, and stops watching its process" "pid $job8c: $(grep -a "$gid8" "$T/cts-a.log" | tail -4)"
check "and A stops its old copy (fence kill: one live copy)" wait_for 10 sh -c "! kill -0 $job8 2>/dev/null"
na8=$(by_a8)
sleep 6		# more than a period: no checkpoint of it is tried any more
expect_eq "no record of $gid8 by cts-a since" "$(by_a8)" "$na8"
expect_eq "and no record of it refused on A" "$(grep -c "of $gid8 refused by the GCS" "$T/cts-a.log")" 0
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gid8))" gcaCTSName)
has "$out" "gcaCTSName: cts-b" && pass "the job entry names cts-b" || fail "the job entry names cts-b" "$out"
! grep -q " $gid8\$" "$T/cts-a/jobs" && pass "A's job table no longer lists $gid8" || fail "A forgot $gid8" "$(cat "$T/cts-a/jobs")"
kill -9 $job8; kill -TERM $rec; wait $job8 $rec 2>/dev/null
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null

# ---- retention: A keeps 2 per job; the third checkpoint expires the first in the directory ----
cts_start a TRUE "replicas cts-r@${net}4:$(cat "$T/cts-r.port")
retention 2" && pass "cts-a restarts with retention 2" || fail "cts-a restarts with retention 2" "$(tail -3 "$T/cts-a.log")"
gid3=kept-job
log7=$T/c7.log
on a gca-exec --gid $gid3 -- "$counter" --log "$log7" --tick 20 &
job3=$!
on_exit "kill -9 $job3"
check "a third job runs on A" wait_for 10 reached "$log7" 3
kids=()
for k in 1 2 3; do
	out=$(gca-ctl checkpoint $gid3 2>&1)
	kids+=("$(echo "$out" | awk '$1=="checkpoint"{print $2}')")
done
expect_eq "three checkpoints taken" "${#kids[@]}" 3
check "the first one's record is marked expired" wait_for 10 sh -c "ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=${kids[0]})' gcaStatus | grep -qx 'gcaStatus: expired'"
[ ! -e "$T/cts-a/images/$gid3/${kids[0]}" ] && [ -e "$T/cts-a/images/$gid3/${kids[2]}" ] && pass "A removed its image and kept the newest two" || fail "A's retention" "$(ls "$T/cts-a/images/$gid3")"
check "the expired record no longer lists cts-a (cts-r keeps its copy)" wait_for 10 sh -c "ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=${kids[0]})' gcaLocation | awk '/^gcaLocation/{print \$2}' | tr '\n' ' ' | grep -qx 'cts-r '"
out=$(lds "(gcaCheckpointId=${kids[1]})" gcaStatus)
grep -q "gcaStatus" <<<"$out" && fail "the second one is not expired" "$out" || pass "the second one is not expired"
# a manifest signature that is not the manifest's: B refuses A's copy and takes the replica's
cp "$T/cts-a/images/$gid3/${kids[2]}/manifest.sig" "$T/cts-a/images/$gid3/${kids[1]}/manifest.sig"
log8=$T/c8.log
on b gca-recover --gid $gid3 --checkpoint "${kids[1]}" -- "$counter" --log "$log8" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "recovery on B of a checkpoint whose signature at A was swapped: it resumes" wait_for 20 grep -q "^restored" "$log8"
grep -q "fetch of ${kids[1]} from cts-a.*signature" "$T/cts-b.log" && pass "B refused A's copy: $(grep -o "manifest of checkpoint ${kids[1]} is refused: [^(]*" "$T/cts-b.log" | head -1 | cut -c1-120)" || fail "B refused A's copy" "$(grep -a "${kids[1]}" "$T/cts-b.log" | tail -3)"
grep -q "fetched checkpoint ${kids[1]} from cts-r" "$T/cts-b.log" && pass "and fetched the replica's" || fail "fetched from cts-r"
kill -TERM $rec; wait $rec 2>/dev/null
kill -9 $job3; wait $job3 2>/dev/null
out=$(on b gca-recover --gid $gid3 --checkpoint "${kids[0]}" -- touch "$T/started-3" 2>&1); rc=$?
case "$rc $out" in "1 "*expired*) pass "recovery from the expired checkpoint is refused: $(echo "$out" | head -1 | cut -c1-150)" ;; *) fail "recovery from an expired checkpoint refused" "$rc $out" ;; esac

# ---- a store edited consistently (a byte and its manifest line) is refused where it was taken ----
d=$T/cts-a/images/$gid3/${kids[2]}
good=$(cat "$T/cts-r/images/$gid3/${kids[2]}/counter")
cp "$d/manifest" "$T/manifest.${kids[2]}"
python3 - "$d" <<'PY'
import hashlib, sys
d = sys.argv[1]
b = bytearray(open(d + '/counter', 'rb').read())
b[0] = ord('1') if b[0] != ord('1') else ord('2')		# one byte, same size
open(d + '/counter', 'r+b').write(b)
lines = open(d + '/manifest').read().split('\n')
lines = ['file %s %d counter' % (hashlib.sha256(b).hexdigest(), len(b)) if l.startswith('file ') and l.endswith(' counter') else l for l in lines]
open(d + '/manifest', 'w').write('\n'.join(lines))
PY
out=$(on a gca-recover --gid $gid3 --checkpoint "${kids[2]}" -- touch "$T/started-4" 2>&1); rc=$?
case "$rc $out" in "1 "*"manifest of checkpoint ${kids[2]} has sha256"*"the record says"*) pass "A refuses its own edited image: $(echo "$out" | head -1 | cut -c1-170)" ;; *) fail "A refuses the edited image" "$rc $out" ;; esac
[ ! -e "$T/started-4" ] && pass "and the job did not start" || fail "the job did not start on A"
out=$(on a gca-recover --gid $gid3 --checkpoint "${kids[1]}" -- touch "$T/started-5" 2>&1); rc=$?
case "$rc $out" in "1 "*"is refused: its signature"*) pass "A refuses its image whose manifest.sig was swapped: $(echo "$out" | head -1 | cut -c1-170)" ;; *) fail "A checks manifest.sig" "$rc $out" ;; esac
[ ! -e "$T/started-5" ] && pass "and the job did not start" || fail "the job did not start on A (signature)"

# ---- a bad copy at one holder: the next holder, from scratch ----
cp "$T/manifest.${kids[2]}" "$d/manifest"	# the record's manifest again, with the changed byte
log18=$T/c18.log
on b gca-recover --gid $gid3 --checkpoint "${kids[2]}" -- "$counter" --log "$log18" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "recovery on B while A's copy has a changed byte: it resumes" wait_for 20 grep -q "^restored" "$log18"
expect_eq "with the state of the good copy" "$(awk '$1=="restored"{print $2}' "$log18")" "$good"
grep -q "fetch of ${kids[2]} from cts-a@[^ ]*: image file counter of checkpoint ${kids[2]}: sha256 mismatch.*its copy is refused" "$T/cts-b.log" && pass "B refused A's copy: $(grep -o "image file counter of checkpoint [^(]*" "$T/cts-b.log" | head -1 | cut -c1-140)" || fail "B refused A's copy (content)" "$(grep -a "${kids[2]}" "$T/cts-b.log" | tail -4)"
grep -q "fetched checkpoint ${kids[2]} from cts-r" "$T/cts-b.log" && pass "and fetched R's" || fail "fetched from cts-r" "$(grep -a "${kids[2]}" "$T/cts-b.log" | tail -3)"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- gca-ctl gc: the replica restarted with retention 1 ----
kill ${ctspid[r]}; wait ${ctspid[r]} 2>/dev/null
cts_start r TRUE "retention 1" && pass "cts-r restarts with retention 1" || fail "cts-r restarts" "$(tail -3 "$T/cts-r.log")"
kill ${ctspid[c]}; wait ${ctspid[c]} 2>/dev/null
check "cts-c, stopped, is marked down" wait_for 20 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'cn=cts-c,ou=cts,$GCA_BASE_DN' gcaStatus | grep -qx 'gcaStatus: down'"
. "$site/admin.env"
out=$(gca-ctl --admin gc $gid3 --dry-run 2>&1); rc=$?
want="would remove cts-r ${kids[0]} $gid3
would remove cts-r ${kids[1]} $gid3"
expect_eq "gca-ctl gc --dry-run shows R's two older copies of $gid3" "$rc $(grep '^would remove' <<<"$out" | sort)" "0 $(sort <<<"$want")"
grep -q "^skipped cts-c: down" <<<"$out" && pass "and names cts-c, which it could not ask: $(grep '^skipped cts-c' <<<"$out")" || fail "gc names the CTS it skipped" "$out"
[ -d "$T/cts-r/images/$gid3/${kids[0]}" ] && pass "and removes nothing" || fail "dry run removed nothing"
out=$(gca-ctl --admin gc $gid3 2>&1); rc=$?
expect_eq "gca-ctl gc removes them" "$rc $(grep -c '^removed cts-r' <<<"$out")" "0 2"
[ ! -e "$T/cts-r/images/$gid3/${kids[1]}" ] && [ -d "$T/cts-r/images/$gid3/${kids[2]}" ] && pass "R keeps only the newest" || fail "R keeps only the newest" "$(ls "$T/cts-r/images/$gid3")"
check "the record of the second no longer lists cts-r, and is not expired (A took it)" wait_for 10 sh -c "out=\$(ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=${kids[1]})' gcaLocation gcaStatus); ! echo \"\$out\" | grep -q 'cts-r\|gcaStatus'"
out=$(gca-ctl --broker gc 2>&1); rc=$?	# admin.env is sourced above: without --broker, the admin
case "$rc $out" in "1 "*forbidden*) pass "gca-ctl gc without --admin is forbidden" ;; *) fail "gc needs admin" "$rc $out" ;; esac

# ---- expiry survives a GCS that is away: A's retention runs (gc through the site's GCS) while the
# GCS it reports to is down; the removal waits in A's outbox and is sent when that GCS is back.
# (A SIGSTOPped GCS would not show it: the request waits in its socket and is served on SIGCONT.) ----
kill ${ctspid[a]}; wait ${ctspid[a]} 2>/dev/null
cts_start a TRUE "retention 1" && pass "cts-a restarts with retention 1" || fail "cts-a restarts with retention 1" "$(tail -3 "$T/cts-a.log")"
kill -9 $gcs2; wait $gcs2 2>/dev/null
out=$(gca-ctl --admin --gcs "$site_gcs" gc $gid3 2>&1); rc=$?
expect_eq "with gcs-2 killed, gc through the site's GCS: A removes its older copy" "$rc $(grep '^removed cts-a' <<<"$out")" "0 removed cts-a ${kids[1]} $gid3"
# (the gc reply goes before the next loop turn's group commit writes the entry: a moment later)
a_outbox_has() { a_outbox | grep -qxF "$1"; }
wait_for 5 a_outbox_has "${kids[1]}.gone" && pass "the removal waits in A's outbox" || fail "the removal is in A's outbox" "$(ls -la "$T/cts-a/outbox"; cut -c1-80 "$T/cts-a/outbox/log")"
out=$(lds "(gcaCheckpointId=${kids[1]})" gcaLocation gcaStatus)
grep -qx "gcaLocation: cts-a" <<<"$out" && ! grep -q gcaStatus <<<"$out" && pass "the directory does not know yet" || fail "the directory is unchanged while the GCS is away" "$out"
sed "s/^listen .*/listen $GCA_GCS_ENDPOINT/" "$T/gcs2.conf" > "$T/gcs2-again.conf"
gca-gcs -f "$T/gcs2-again.conf" >>"$T/gcs2.log" 2>&1 &
gcs2=$!
on_exit "kill $gcs2"
expired_wo_a() { local o; o=$(lds "(gcaCheckpointId=${kids[1]})" gcaLocation gcaStatus); grep -qx "gcaStatus: expired" <<<"$o" && ! grep -qx "gcaLocation: cts-a" <<<"$o"; }
check "gcs-2 back on its port: the record ends expired, without cts-a" wait_for 30 expired_wo_a
a_outbox_gone() { ! a_outbox | grep -qxF "${kids[1]}.gone"; }
check "and A's outbox is empty again" wait_for 10 a_outbox_gone

# ---- encryption at rest: A and B share the site key, R has another ----
openssl rand -hex 32 > "$T/site.key"; openssl rand -hex 32 > "$T/other.key"
chmod 0600 "$T/site.key" "$T/other.key"
keyid=$(python3 -c 'import sys,hashlib; print(hashlib.sha256(bytes.fromhex(open(sys.argv[1]).read().strip())).hexdigest()[:16])' "$T/site.key")
for x in a b r; do kill ${ctspid[$x]}; wait ${ctspid[$x]} 2>/dev/null; done
cts_start a TRUE "image_key $T/site.key" && cts_start b TRUE "image_key $T/site.key" &&
	cts_start r TRUE "image_key $T/other.key" && pass "A and B restart with the site key, R with another" || fail "restart with keys"
gid4=secret-job
log9=$T/c9.log
on a gca-exec --gid $gid4 -- "$counter" --log "$log9" --tick 20 &
job4=$!
on_exit "kill -9 $job4"
check "a fourth job runs on A" wait_for 10 reached "$log9" 5
n0=$(last_count "$log9")
out=$(gca-ctl checkpoint $gid4 2>&1)
eid=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
n1=$(last_count "$log9")
case "$out" in *"seq 1 at cts-a"*) pass "an encrypted checkpoint on A" ;; *) fail "encrypted checkpoint" "$out" ;; esac
head -c 6 "$T/cts-a/images/$gid4/$eid/counter" | grep -q GCAE2 && ! grep -qxE "[0-9]+" "$T/cts-a/images/$gid4/$eid/counter" && pass "the stored file is ciphertext, not the count" || fail "stored encrypted" "$(head -c 40 "$T/cts-a/images/$gid4/$eid/counter" | od -c | head -2)"
grep -qx "key $keyid" "$T/cts-a/images/$gid4/$eid/manifest" && pass "the manifest names the key id $keyid" || fail "manifest key line" "$(head -8 "$T/cts-a/images/$gid4/$eid/manifest")"
out=$(lds "(gcaCheckpointId=$eid)" gcaProperty)
grep -qx "gcaProperty: image_key=$keyid" <<<"$out" && pass "the record carries the key id" || fail "key id on the record" "$out"
kill -9 $job4; wait $job4 2>/dev/null
out=$(on r gca-recover --gid $gid4 --checkpoint latest -- touch "$T/started-r" 2>&1); rc=$?
case "$rc $out" in "1 "*"encrypted with site key $keyid"*) pass "R, with another key, refuses: $(echo "$out" | head -1 | cut -c1-150)" ;; *) fail "R refuses (other key)" "$rc $out" ;; esac
[ ! -e "$T/started-r" ] && pass "and the job did not start" || fail "job did not start on r"
log10=$T/c10.log
on b gca-recover --gid $gid4 --checkpoint latest -- "$counter" --log "$log10" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "B, with the site key, fetches, decrypts and restores it" wait_for 20 grep -q "^restored" "$log10"
r=$(awk '$1=="restored"{print $2}' "$log10")
[ "$r" -ge "$n0" ] && [ "$r" -le "$n1" ] && pass "restored $r, the count at the checkpoint ($n0..$n1)" || fail "restored value" "$r not in $n0..$n1"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- incremental images (app_incremental): B fetches and verifies every link of the chain ----
for x in a b; do kill ${ctspid[$x]}; wait ${ctspid[$x]} 2>/dev/null; done
cts_start a TRUE "app_incremental 3" && cts_start b TRUE && pass "A restarts with app_incremental 3, B plain" || fail "restart for incremental images"
gid6=incr-job
log14=$T/c14.log
on a gca-exec --gid $gid6 -- "$counter" --log "$log14" --tick 20 --pad 300000 --incremental &
job6=$!
on_exit "kill -9 $job6"
check "an incremental counter runs on A" wait_for 10 reached "$log14" 5
iids=()
for k in 1 2 3; do
	n0=$(last_count "$log14"); wait_for 10 reached "$log14" $((n0 + 3))
	out=$(gca-ctl checkpoint $gid6 2>&1)
	iids+=("$(echo "$out" | awk '$1=="checkpoint"{print $2}')")
done
isaved=$(cat "$T/cts-a/images/$gid6/${iids[2]}/counter" 2>/dev/null)
out=$(lds "(gcaCheckpointId=${iids[2]})" gcaParentCheckpointId)
has "$out" "gcaParentCheckpointId: ${iids[1]}" && pass "the third record names the second as its parent" || fail "the parent on the record" "$out"
[ -f "$T/cts-a/images/$gid6/${iids[0]}/pad" ] && [ ! -e "$T/cts-a/images/$gid6/${iids[2]}/pad" ] &&
	pass "the first image holds the pad, the third only the counter" || fail "incremental image contents" "$(ls "$T/cts-a/images/$gid6"/*)"
kill -9 $job6; wait $job6 2>/dev/null
log15=$T/c15.log
on b gca-recover --gid $gid6 --checkpoint latest -- "$counter" --log "$log15" --tick 20 --incremental &
rec=$!
on_exit "kill -TERM $rec"
check "B fetches the chain and restores the newest link" wait_for 20 grep -q "^restored" "$log15"
expect_eq "B restored the third checkpoint's count" "$(awk '$1=="restored"{print $2}' "$log15")" "$isaved"
for id in "${iids[@]}"; do
	[ -f "$T/cts-b/images/$gid6/$id/manifest" ] || fail "B holds the link $id"
done
[ "$(grep -c "fetching its parent" "$T/cts-b.log")" -ge 2 ] && pass "B fetched both parents after the newest image" || fail "B fetched the parents" "$(grep -i fetch "$T/cts-b.log" | tail -5)"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- compression (compress zstd): A compresses each file as it copies it, B (without) fetches,
# verifies the stored bytes, decompresses a copy and restores; a changed stored byte is refused
# before anything decompresses or starts, and the other image stays as it was ----
for x in a b; do kill ${ctspid[$x]}; wait ${ctspid[$x]} 2>/dev/null; done
cts_start a TRUE "compress zstd" && cts_start b TRUE && pass "A restarts with compress zstd, B without" || fail "restart for compression" "$(tail -3 "$T/cts-a.log")"
gid9=zstd-job
log20=$T/c20.log
zpad=$((2 * 1024 * 1024))
on a gca-exec --gid $gid9 -- "$counter" --log "$log20" --tick 20 --pad $zpad --pad-text &
job9=$!
on_exit "kill -9 $job9"
check "a counter whose pad is half text runs on A" wait_for 10 reached "$log20" 5
zids=()
for k in 1 2; do
	n0=$(last_count "$log20"); wait_for 10 reached "$log20" $((n0 + 3))
	out=$(gca-ctl checkpoint $gid9 2>&1)
	case "$out" in *"seq $k at cts-a"*) pass "compressed checkpoint $k on A" ;; *) fail "compressed checkpoint $k" "$out" ;; esac
	zids+=("$(echo "$out" | awk '$1=="checkpoint"{print $2}')")
done
kill -9 $job9; wait $job9 2>/dev/null
zdir=$T/cts-a/images/$gid9
zline=$(grep ' pad$' "$zdir/${zids[1]}/manifest")
case "$zline" in "zstd "*" $zpad pad") pass "the manifest lists pad as zstd, $zpad bytes raw" ;; *) fail "the pad's zstd line" "$zline" ;; esac
zsize=$(stat -c %s "$zdir/${zids[1]}/pad")
[ "$zsize" -lt $((zpad * 6 / 10)) ] && pass "stored on A in $zsize bytes (under 0.6 of $zpad)" || fail "the pad stored smaller" "$zsize"
expect_eq "the stored pad is a zstd frame" "$(head -c 4 "$zdir/${zids[1]}/pad" | od -An -tx1 | tr -d ' ')" 28b52ffd
zsaved=$(zstd -qdc "$zdir/${zids[1]}/counter")
zsum=$(cat "$zdir/${zids[1]}"/* | sha256sum)
cp "$zdir/${zids[0]}/pad" "$T/zpad.saved"
printf 'X' | dd of="$zdir/${zids[0]}/pad" bs=1 seek=$((zsize / 2)) conv=notrunc status=none
out=$(on a gca-recover --gid $gid9 --checkpoint "${zids[0]}" -- touch "$T/started-z" 2>&1); rc=$?
case "$rc $out" in "1 "*"pad"*"sha256 mismatch"*) pass "a changed byte in a stored frame is refused: $(echo "$out" | head -1 | cut -c1-150)" ;; *) fail "changed frame refused" "$rc $out" ;; esac
[ ! -e "$T/started-z" ] && pass "and the job did not start" || fail "job did not start after a changed frame"
expect_eq "the newest image is unchanged" "$(cat "$zdir/${zids[1]}"/* | sha256sum)" "$zsum"
cp "$T/zpad.saved" "$zdir/${zids[0]}/pad"
log21=$T/c21.log
on b gca-recover --gid $gid9 --checkpoint latest -- "$counter" --log "$log21" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "B, without compress, fetches, decompresses and restores A's compressed image" wait_for 20 grep -q "^restored" "$log21"
expect_eq "B restored the newest checkpoint's count" "$(awk '$1=="restored"{print $2}' "$log21")" "$zsaved"
kill -TERM $rec; wait $rec 2>/dev/null

# ---- figures, when asked (GCA_TRANSFER_BENCH_MB=256): a fetch A -> B against a plain TLS copy of
# the same file between the same namespaces (Python's ssl, the same certificates); never fails ----
if [ -n "${GCA_TRANSFER_BENCH_MB:-}" ]; then
	for x in a b; do kill ${ctspid[$x]}; wait ${ctspid[$x]} 2>/dev/null; done
	cts_start a TRUE && cts_start b TRUE
	gid5=bench-job
	on a gca-exec --gid $gid5 -- "$counter" --log "$T/c11.log" --tick 50 --pad $((GCA_TRANSFER_BENCH_MB * 1048576)) &
	job5=$!
	on_exit "kill -9 $job5"
	wait_for 10 reached "$T/c11.log" 2
	t0=$(date +%s%N); out=$(gca-ctl checkpoint $gid5 2>&1); t1=$(date +%s%N)
	bid=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
	echo "# checkpoint of $GCA_TRANSFER_BENCH_MB MiB on A (copy, sha256, sign): $(( (t1 - t0) / 1000000 )) ms"
	kill -9 $job5; wait $job5 2>/dev/null
	t0=$(date +%s%N)
	on a gca-recover --gid $gid5 --checkpoint $bid -- "$counter" --log "$T/c12.log" --tick 50 &
	rec=$!; wait_for 60 grep -q "^restored" "$T/c12.log"; t1=$(date +%s%N)
	echo "# restore on A (verify, copy for the user): $(( (t1 - t0) / 1000000 )) ms"
	kill -TERM $rec; wait $rec 2>/dev/null
	t0=$(date +%s%N)
	on b gca-recover --gid $gid5 --checkpoint $bid -- "$counter" --log "$T/c13.log" --tick 50 &
	rec=$!; wait_for 120 grep -q "^restored" "$T/c13.log"; t1=$(date +%s%N)
	echo "# restore on B (grant, fetch, verify, verify, copy for the user): $(( (t1 - t0) / 1000000 )) ms"
	echo "# $(grep -a "fetched checkpoint $bid" "$T/cts-b.log" | sed 's/.*fetched/fetched/')"
	kill -TERM $rec; wait $rec 2>/dev/null
	cat > "$T/tlscopy.py" <<'PY'
import socket, ssl, sys, time
role, addr, port, ca, cert, key, path = sys.argv[1:8]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if role == "server" else ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(cert, key); ctx.load_verify_locations(ca); ctx.verify_mode = ssl.CERT_REQUIRED
if role == "server":
    s = socket.create_server((addr, int(port)))
    c, _ = s.accept()
    with ctx.wrap_socket(c, server_side=True) as t, open(path, "rb") as f:
        while (b := f.read(1 << 20)):
            t.sendall(b)
else:
    ctx.check_hostname = False
    t0 = time.monotonic(); n = 0
    with ctx.wrap_socket(socket.create_connection((addr, int(port)))) as t:
        while (b := t.recv(1 << 20)):
            n += len(b)
    dt = time.monotonic() - t0
    print("plain TLS 1.3 copy: %d bytes in %d ms (%.1f MiB/s)" % (n, dt * 1000, n / 1048576 / dt))
PY
	ip netns exec gca${n}a python3 "$T/tlscopy.py" server ${net}2 4499 "$site/pki/ca.crt" "$site/pki/cts-cts-a.crt" "$site/pki/cts-cts-a.key" "$T/cts-a/images/$gid5/$bid/pad" &
	srv=$!; sleep 0.5
	echo "# $(ip netns exec gca${n}b python3 "$T/tlscopy.py" client ${net}2 4499 "$site/pki/ca.crt" "$site/pki/cts-cts-b.crt" "$site/pki/cts-cts-b.key" - 2>&1 | tail -1)"
	wait $srv 2>/dev/null
fi

done_testing
