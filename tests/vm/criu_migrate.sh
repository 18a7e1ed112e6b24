# criu-migrate-vm: a criu job moving between two computing resources (issue 10 items 3 and 4), two
# qemu guests of Debian 12's kernel booted side by side, once each.
# timeout: 420
#
# The network: a bridge on the host (address .1) with one tap per guest (A at .2, B at .3), so
# each guest's CTS has one address that the host's GCS, the broker and the other guest all dial,
# and that its certificate names. (qemu's user networking gives each guest a private 10.0.2.x and
# the host only through forwarded ports: no address would be the same from the host and from the
# other guest.) On the host: the site's slapd, a GCS on the bridge, and cts-r, the site's image
# store: a criu CTS that holds replicas (its criu need not work on this host's kernel). A shared
# 9p folder, /mnt/common in both guests, holds the job's log, as a cluster's shared file system.
#
# A (criu_incremental 3, criu_predump yes, replicas cts-r) runs the job under gca-exec; the broker
# checkpoints it three times: a full one and two incremental ones, each a pre-dump while the job
# runs and then the dump proper on it. Every image is replicated to cts-r; then guest A is
# killed (qemu, the resource lost). B (no pre-dumps) recovers the job from latest: its CTS
# fetches every link of the chain from cts-r, verifies it, criu restores it through the chain's
# links; the job resumes at the dump point, the job entry names cts-b, the records list cts-b. The
# broker checkpoints it on B (a full dump without a pre-dump: the frozen times compared), and B
# recovers it once more from the second checkpoint.
. "$GCA_TOP/tests/lib.sh"
LAB_TIMEOUT=380	# each guest's qemu, at most: the suite's whole run
. "$GCA_TOP/tests/vm/lab.sh"

S=criu-migrate-vm
[ "$(id -u)" = 0 ] || not_run $S "needs root for a bridge and taps"
command -v ip >/dev/null || not_run $S "ip (iproute2) is not installed"
[ -c /dev/net/tun ] || not_run $S "no /dev/net/tun for the guests' taps"
n=$(($$ % 100000))
ip tuntap add dev gcmp$n mode tap 2>/dev/null && ip link del gcmp$n ||
	not_run $S "cannot make a tap device here"
CRIU_SITE_OWN_NETWORK=1
CRIU_CTS_MORE=
. "$GCA_TOP/tests/vm/criu_site.sh"

# ---- the network: a bridge, a tap per guest ----
net=10.$((150 + $$ % 50)).$((($$ / 50) % 250)).
host=${net}1
declare -A ip=([a]=${net}2 [b]=${net}3) tap=([a]=gcmt${n}a [b]=gcmt${n}b) mac=([a]=52:54:00:67:ca:0a [b]=52:54:00:67:ca:0b)
br=gcmbr$n
ip link add $br type bridge || { fail "bridge $br"; exit 1; }
on_exit "ip link del $br"
if ip addr add $host/24 dev $br && ip link set $br up; then pass "bridge $br at $host"
else fail "bridge $br at $host"; exit 1; fi
for g in a b; do
	ip tuntap add dev ${tap[$g]} mode tap || { fail "tap ${tap[$g]}"; exit 1; }
	on_exit "ip link del ${tap[$g]}"
	ip link set ${tap[$g]} master $br up || { fail "tap ${tap[$g]} on $br"; exit 1; }
done

# ---- the host: a GCS on the bridge, the image store cts-r ----
# what a broker reads in the directory
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAP_URI" -b "$GCA_BASE_DN" "$@" 2>/dev/null; }
attr() { awk -v a="$1:" '$1 == a { sub(/^[^:]*: /, ""); print }'; }
locations() { lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$1))" gcaLocation | attr gcaLocation | sort | tr '\n' ' ' | sed 's/ $//'; }
located() { [ "$(locations "$1")" = "$2" ]; }
located_at() { locations "$1" | tr ' ' '\n' | grep -qx "$2"; }
status_is() { [ "$(lds "(&(objectClass=gcaTranslationService)(cn=$1))" gcaStatus | attr gcaStatus)" = "$2" ]; }
gca-pki issue "$site/pki" gcs gcs-br --host $host >/dev/null
cat > "$T/gcs-br.conf" <<CONF
name gcs-br
listen $host:0
ca $site/pki/ca.crt
cert $site/pki/gcs-gcs-br.crt
key $site/pki/gcs-gcs-br.key
directory $site/gcs-directory.conf
cts_timeout 6
CONF
gca-gcs -f "$T/gcs-br.conf" --port-file "$T/gcs-br.port" >>"$T/gcs-br.log" 2>&1 &
on_exit "kill $!"
if wait_for 20 test -s "$T/gcs-br.port"; then pass "gca-gcs on the bridge"
else fail "gca-gcs on the bridge" "$(tail -3 "$T/gcs-br.log")"; exit 1; fi
export GCA_GCS_ENDPOINT=$host:$(cat "$T/gcs-br.port")

gca-pki issue "$site/pki" cts cts-r --host $host >/dev/null
gca-pki issue "$site/pki" sign cts-r >/dev/null
cat > "$T/cts-r.ldif" <<LDIF
dn: cn=cts-r,ou=cts,$GCA_BASE_DN
gcaCoreService: criu
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: TRUE
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
description: the site's image store of VM suite $S (keeps replicas of criu images)
LDIF
mkdir -p "$T/run" && chmod 0755 "$T/run"
cat > "$T/cts-r.conf" <<CONF
name cts-r
core_service criu
descriptor $T/cts-r.ldif
listen $host:0
socket $T/run/cts-r.sock
gcs $GCA_GCS_ENDPOINT
ca $site/pki/ca.crt
cert $site/pki/cts-cts-r.crt
key $site/pki/cts-cts-r.key
sign_cert $site/pki/sign-cts-r.crt
sign_key $site/pki/sign-cts-r.key
state $T/cts-r
heartbeat 2
CONF
gca-cts -f "$T/cts-r.conf" --port-file "$T/cts-r.port" >>"$T/cts-r.log" 2>&1 &
on_exit "kill $!"
cts_at() { [ "$(lds "(&(objectClass=gcaTranslationService)(cn=$1))" gcaEndpoint | attr gcaEndpoint)" = "$2" ]; }
if wait_for 20 test -s "$T/cts-r.port" && wait_for 20 cts_at cts-r "$host:$(cat "$T/cts-r.port")"; then
	pass "cts-r, the image store, registered at $host:$(cat "$T/cts-r.port") ($(lds '(cn=cts-r)' gcaStatus | attr gcaStatus | cut -c1-70))"
else
	fail "cts-r registers" "$(tail -3 "$T/cts-r.log")"; exit 1
fi

# ---- the guests: a share each (their CTS, their scenario), one shared folder for the job ----
common=$T/common
mkdir -p "$common"
declare -A share=([a]=$T/share-a [b]=$T/share-b)
mkdir -p "${share[a]}" "${share[b]}"
criu_site_cts cts-a "${share[a]}" "${ip[a]}:7000" "$GCA_GCS_ENDPOINT" TRUE "criu_incremental 3
criu_predump yes
replicas cts-r@$host:$(cat "$T/cts-r.port")" "${ip[a]}" &&
criu_site_cts cts-b "${share[b]}" "${ip[b]}:7000" "$GCA_GCS_ENDPOINT" TRUE "" "${ip[b]}" ||
	{ fail "the guest CTSes' certificates and configurations"; exit 1; }
log=$common/job.log
for g in a b; do
	# B's own processes take PIDs above A's job's, which criu restores as they were
	floor=; [ $g = b ] && floor=5000
	cat > "${share[$g]}/scenario" <<GUEST
S=/mnt/share
NAME=cts-$g
ME=${ip[$g]}
PEER=${ip[a]}
ROUTER=$host
FLOOR=$floor
GUEST
	cat >> "${share[$g]}/scenario" <<'GUEST'
gwait() { i=0; while [ ! -e "$2" ]; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "gave up waiting for $2"; return 1; }; sleep 0.1; done; }
logwait() { i=0; until grep -q "$3" "$2" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($1 * 10)) ] && { echo "no '$3' in $2"; return 1; }; sleep 0.1; done; }
# resumed PID MARK: the restored job wrote a counter line after the line MARK (bounded; not if gca-recover died)
resumed() { i=0; until awk -v m="$2" 'f && /^counter/ { ok = 1 } $0 == m { f = 1 } END { exit !ok }' /mnt/common/job.log; do
	i=$((i + 1)); { [ $i -gt 1500 ] || ! kill -0 $1 2>/dev/null; } && { echo "no counter after '$2'"; return 1; }; sleep 0.1; done; }
put() { echo "$2" > "$S/$1.tmp" && mv "$S/$1.tmp" "$S/$1"; }
[ -n "$FLOOR" ] && echo $FLOOR > /proc/sys/kernel/ns_last_pid
ip addr flush dev eth0 && ip addr add $ME/24 dev eth0 && ip link set eth0 up && ip route add default via $ROUTER
mkdir -p /mnt/common
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 common /mnt/common || echo "cannot mount the common folder"
echo "guest $NAME at $ME: $(uname -r), $(criu --version | head -1)"
criu check > $S/criu-check.out 2>&1; put criu-check.rc $?
export GCA_CTS_SOCKET=/run/$NAME.sock
gca-cts -f $S/$NAME.conf >> $S/cts.log 2>&1 &
cts=$!
i=0; until [ -S $GCA_CTS_SOCKET ]; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1; done
GUEST
done
cat >> "${share[a]}/scenario" <<'GUEST'
gca-exec --gid mig-job -- job --log /mnt/common/job.log --tick 100 --mib 32 </dev/null >>/mnt/common/job.out 2>&1 &
logwait 60 /mnt/common/job.log ready && touch $S/job.started
# checkpoints, replicas; then the host kills this guest
gwait 370 $S/never
GUEST
cat >> "${share[b]}/scenario" <<'GUEST'
gwait 120 $S/go.peer && timeout 20 nc -w 5 $PEER 7000 </dev/null >/dev/null 2>&1; put peer.rc $?
gwait 400 $S/go.recover || exit 1
gca-recover --gid mig-job --checkpoint latest -- job --log /mnt/common/job.log </dev/null >>$S/recover1.out 2>&1 &
rpid=$!
resumed $rpid "mark killed" && touch $S/recovered1
gwait 300 $S/go.stop || exit 1
kill -TERM $rpid; wait $rpid; put recover1.rc $?
echo "mark stopped" >> /mnt/common/job.log
gca-recover --gid mig-job --checkpoint "$(cat $S/go.stop)" -- job --log /mnt/common/job.log </dev/null >>$S/recover2.out 2>&1 &
rpid=$!
resumed $rpid "mark stopped" && sleep 0.5
kill -TERM $rpid; wait $rpid; put recover2.rc $?
(cd /tmp/cts-b/images/mig-job && for l in */parent */predump/parent; do [ -L $l ] && echo "$l -> $(readlink $l)"; done) > $S/links.tmp
find /tmp/cts-b/images/mig-job -type f | sed 's,^/tmp/cts-b/images/mig-job/,,' | sort >> $S/files.tmp
mv $S/links.tmp $S/links.ls; mv $S/files.tmp $S/files.ls
touch $S/recovered2
kill $cts; wait $cts
echo "guest: done"
GUEST

t_boot=$(date +%s.%N)
for g in a b; do
	lab_guest_boot $g "${share[$g]}" "$T/console-$g.log" \
		"tap,id=n0,ifname=${tap[$g]},script=no,downscript=no" ",mac=${mac[$g]}" \
		-virtfs "local,path=$common,mount_tag=common,security_model=none"
done
for g in a b; do
	if lab_guest_wait_file $g 90 "${share[$g]}/criu-check.rc"; then
		pass "guest $g booted and mounted its shares ($(since "$t_boot") s)"
	else
		fail "guest $g booted" "$(grep -ao 'lab:.*' "$T/console-$g.log" | tail -5)"; exit 1
	fi
	expect_eq "criu check passes in guest $g" "$(cat "${share[$g]}/criu-check.rc")" 0
done
for g in a b; do
	check "cts-$g registered, published at ${ip[$g]}:7000 (its certificate's address)" wait_for 60 cts_at cts-$g "${ip[$g]}:7000"
done
touch "${share[b]}/go.peer"
lab_guest_wait_file b 60 "${share[b]}/peer.rc"
expect_eq "guest b reaches cts-a at that same address over the bridge" "$(cat "${share[b]}/peer.rc" 2>/dev/null)" 0
if lab_guest_wait_file a 60 "${share[a]}/job.started"; then pass "gca-exec on guest a started the job"
else fail "gca-exec on guest a started the job" "$(tail -n 3 "$common/job.out" "${share[a]}/cts.log")"; exit 1; fi

# ---- three checkpoints on A by the broker on the host ----
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$log"; }
rec() { lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$1))" "$2" | attr "$2"; }
reached() { [ "$(last)" -ge "$1" ]; }
ids=() lo=() hi=()
for k in 1 2 3; do
	sleep 1
	l=$(last) t=$(date +%s.%N)
	out=$(gca-ctl checkpoint mig-job 2>&1)
	h=$(last)
	id=$(echo "$out" | awk '$1 == "checkpoint" { print $2; exit }')
	ids+=("$id") lo+=("$l") hi+=("$h")
	case "$out" in *"seq $k at cts-a"*) pass "checkpoint $k on A: $id (counter $l..$h, $(since "$t") s)" ;;
	*) fail "checkpoint $k on A" "$out" ;; esac
done
expect_eq "checkpoint 1 is full: its record names no parent" "$(rec "${ids[0]}" gcaParentCheckpointId)" ""
expect_eq "checkpoint 2 is incremental on 1" "$(rec "${ids[1]}" gcaParentCheckpointId)" "${ids[0]}"
expect_eq "checkpoint 3 is incremental on 2" "$(rec "${ids[2]}" gcaParentCheckpointId)" "${ids[1]}"
npre=$(grep -c "its pre-dump froze it" "${share[a]}/cts.log")
expect_eq "each of A's checkpoints began with a pre-dump (A's CTS log)" "$npre" 3
for k in 0 1 2; do
	check "checkpoint $((k + 1)) is replicated: its record lists cts-a and cts-r" wait_for 60 located "${ids[$k]}" "cts-a cts-r"
done
rdir=$T/cts-r/images/mig-job
if ls "$rdir/${ids[0]}/predump/"pages-*.img "$rdir/${ids[2]}/predump/"pagemap-*.img >/dev/null 2>&1; then
	pass "cts-r's copies hold each pre-dump in the image's folder predump/"
else
	fail "cts-r's copies hold the pre-dumps" "$(ls -R "$rdir" 2>&1 | head -20)"
fi
expect_eq "and no symbolic link (criu's parent links are not part of an image)" "$(find "$rdir" -type l | wc -l)" 0

# ---- A is lost; B recovers the job from the replicas ----
wait_for 20 reached $((hi[2] + 3))
lab_guest_stop a
killed=$(last)
[ -z "$(tail -c1 "$log")" ] || echo >> "$log"
echo "mark killed" >> "$log"
pass "guest a killed (qemu) at counter $killed, after the last checkpoint at ${lo[2]}..${hi[2]}"
check "the GCS marks cts-a down in the directory" wait_for 30 status_is cts-a down
t=$(date +%s.%N)
touch "${share[b]}/go.recover"
if lab_guest_wait_file b 180 "${share[b]}/recovered1"; then
	pass "gca-recover on B --checkpoint latest: the job runs there ($(since "$t") s)"
else
	fail "gca-recover on B --checkpoint latest" "$(tail -n 5 "${share[b]}/recover1.out" "${share[b]}/cts.log")"
fi
blog=${share[b]}/cts.log
for k in 2 1 0; do
	if grep -q "fetched checkpoint ${ids[$k]} from cts-r" "$blog"; then
		pass "B's CTS fetched checkpoint $((k + 1)) from cts-r: $(grep -o "fetched checkpoint ${ids[$k]} from cts-r.*" "$blog" | sed 's/.*: //' | head -1)"
	else
		fail "B's CTS fetched checkpoint $((k + 1)) from cts-r" "$(grep -i fetch "$blog" | tail -4)"
	fi
done
check "B's CTS verified both parents of checkpoint 3" grep -q "checkpoint ${ids[2]}: 2 parents verified" "$blog"
r1=$(awk 'f && $1 == "counter" { print $2; exit } /^mark killed/ { f = 1 }' "$log")
if [ -n "$r1" ] && [ "$r1" -ge $((lo[2] + 1)) ] && [ "$r1" -le $((hi[2] + 1)) ] && [ "$r1" -lt "$killed" ]; then
	pass "the job resumed on B at counter $r1: checkpoint 3's dump point (${lo[2]}..${hi[2]}), not where A died ($killed)"
else
	fail "the job resumed at checkpoint 3's dump point" "first counter on B $r1, dump window ${lo[2]}..${hi[2]}, killed at $killed; $(tail -3 "${share[b]}/recover1.out")"
fi
out=$(lds "(&(objectClass=gcaJob)(gcaGID=mig-job))" gcaCTSName gcaJobState)
if grep -qx "gcaCTSName: cts-b" <<<"$out" && grep -qx "gcaJobState: running" <<<"$out"; then
	pass "the job entry names cts-b, running"
else
	fail "the job entry names cts-b" "$out"
fi
for k in 0 1 2; do
	check "checkpoint $((k + 1))'s record lists cts-b among its locations" wait_for 15 located_at "${ids[$k]}" cts-b
done
out=$(gca-ctl checkpoint mig-job 2>&1)
id4=$(echo "$out" | awk '$1 == "checkpoint" { print $2; exit }')
case "$out" in *"seq 4 at cts-b"*) pass "the broker's next checkpoint goes to B: seq 4 (a full dump, no pre-dump)" ;;
*) fail "checkpoint 4 at B" "$out" ;; esac

# ---- B again, from checkpoint 2 (in B's store since the chain was fetched) ----
echo "${ids[1]}" > "${share[b]}/go.stop.tmp" && mv "${share[b]}/go.stop.tmp" "${share[b]}/go.stop"
if lab_guest_wait_file b 180 "${share[b]}/recovered2"; then
	pass "gca-recover on B --checkpoint <checkpoint 2's id>"
else
	fail "gca-recover on B --checkpoint <checkpoint 2's id>" "$(tail -n 5 "${share[b]}/recover2.out" "$blog")"
fi
expect_eq "SIGTERM to the first gca-recover reached the job; its status 3 came back" "$(cat "${share[b]}/recover1.rc" 2>/dev/null)" 3
r2=$(awk 'f && $1 == "counter" { print $2; exit } /^mark stopped/ { f = 1 }' "$log")
if [ -n "$r2" ] && [ "$r2" -ge $((lo[1] + 1)) ] && [ "$r2" -le $((hi[1] + 1)) ]; then
	pass "the job resumed at counter $r2: checkpoint 2's dump point (${lo[1]}..${hi[1]})"
else
	fail "the job resumed at checkpoint 2's dump point" "first counter $r2, dump window ${lo[1]}..${hi[1]}; $(tail -3 "${share[b]}/recover2.out")"
fi
expect_eq "and its status 3 came back through the second gca-recover" "$(cat "${share[b]}/recover2.rc" 2>/dev/null)" 3
expect_eq "the heap pattern survived the chain of pre-dumps and dumps" "$(grep -c 'heap bad' "$log")" 0
links=${share[b]}/links.ls
want="${ids[0]}/parent -> predump
${ids[1]}/parent -> predump
${ids[1]}/predump/parent -> ../../${ids[0]}
${ids[2]}/parent -> predump
${ids[2]}/predump/parent -> ../../${ids[1]}"
expect_eq "restore_prepare linked each image to its pre-dump and each pre-dump to the parent checkpoint" "$(grep -v "^${id4:-none}" "$links" 2>/dev/null | sort)" "$want"
check "B's store holds each link's pre-dump, as fetched" grep -q "^${ids[0]}/predump/pages-" "${share[b]}/files.ls"

# ---- frozen times: criu's own figures (--display-stats), as the CTSes logged them ----
frozen() { grep -o "checkpoint $2 of mig-job: criu froze the job [0-9.]* ms.*" "$1" | head -1 | sed 's/^checkpoint [^ ]* of mig-job: //'; }
f1=$(frozen "${share[a]}/cts.log" "${ids[0]}") f3=$(frozen "${share[a]}/cts.log" "${ids[2]}")
f4=$(frozen "$blog" "$id4")
echo "# 32 MiB job, full dump with pre-dump (A, checkpoint 1): $f1"
echo "# 32 MiB job, incremental with pre-dump (A, checkpoint 3): $f3"
echo "# 32 MiB job, full dump without pre-dump (B, checkpoint 4): $f4"
ms() { awk '{ for (i = 1; i < NF; i++) if ($i == "froze" && $(i + 1) == "the" ) { print $(i + 3); exit } }' <<<"$1"; }
pre_ms() { sed -n 's/.*its pre-dump froze it \([0-9.]*\) ms.*/\1/p' <<<"$1"; }
bench_json=${GCA_FIGURES_DIR:-$GCA_BUILD/bench}/criu-migrate.json
if [ -n "$(ms "$f1")" ] && [ -n "$(ms "$f4")" ]; then
	mkdir -p "$(dirname "$bench_json")"
	cat > "$bench_json.tmp" <<JSON
{
  "what": "frozen time of a 32 MiB job in criu's dump (criu --display-stats), with and without a criu pre-dump before it; two qemu guests",
  "guest": "qemu $LAB_ACCEL, $LAB_MEM MiB, kernel $LAB_KREL",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "full_with_predump_ms": {"dump": $(ms "$f1"), "predump": $(pre_ms "$f1")},
  "incremental_with_predump_ms": {"dump": $(ms "$f3"), "predump": $(pre_ms "$f3")},
  "full_without_predump_ms": {"dump": $(ms "$f4")}
}
JSON
	mv "$bench_json.tmp" "$bench_json"
	echo "# figures written to ${bench_json#"$GCA_TOP"/}"
fi

if lab_guest_wait b 60; then pass "guest b powered off"; else fail "guest b powered off"; fi
for g in a b; do sed "s/^/# guest $g: /" "${share[$g]}/scenario.log"; done
echo "# suite wall time $(since "$suite_t0") s"
done_testing
