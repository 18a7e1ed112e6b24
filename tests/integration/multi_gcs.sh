# Two gca-gcs over one directory (gca-site up --gcs 2): both in ou=services; a CTS registered through
# one, a checkpoint routed through the other; a subscriber of either hears of events made through
# both (relayed from the directory's change feed), each once; gca-ctl and the CTS take the list of
# endpoints and fail over when one GCS is killed, with no checkpoint lost or doubled.
# A CTS restarted at the other GCS stays ok in the directory when the first's heartbeat wait ends.
# timeout: 200
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
counter=$GCA_BUILD/examples/counter

check "gca-site up --gcs 2" gca-site up "$site" --gcs 2
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
IFS=, read -r ep1 ep2 <<<"$GCA_GCS_ENDPOINT"
check "site.env lists both GCS endpoints" test -n "$ep1" -a -n "$ep2" -a "$ep1" != "$ep2"
out=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=services,$GCA_BASE_DN" '(objectClass=gcaService)' cn gcaEndpoint)
check "ou=services names gcs-1 at $ep1" grep -qx "gcaEndpoint: $ep1" <<<"$out"
check "ou=services names gcs-2 at $ep2" grep -qx "gcaEndpoint: $ep2" <<<"$out"
check "the CTSes were given both" grep -qx "gcs $ep1,$ep2" "$site/cts-app.conf"
check "gca-site status shows two gca-gcs" sh -c "test \$(gca-site status '$site' | grep -c 'gca-gcs *running') = 2"

# -- subscribers on each GCS --
gca-ctl --gcs "$ep1" --json subscribe > "$TEST_TMP/sub1" 2>"$TEST_TMP/sub1.err" &
sub1=$!
gca-ctl --gcs "$ep2" --json subscribe > "$TEST_TMP/sub2" 2>"$TEST_TMP/sub2.err" &
sub2=$!
on_exit "kill $sub1 $sub2"
sleep 1
check "both subscriptions are taken" kill -0 $sub1 $sub2

# -- a job: bound through gcs-1 (the CTS's first) --
gid=two-gcs-1
log=$TEST_TMP/counter.log
gca-exec --gid "$gid" -- "$counter" --log "$log" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "a job runs under gca-exec" wait_for 10 grep -q 'counter 3' "$log"
check "cts-app registered through gcs-1" grep -q "registered at the GCS $ep1" "$site/log/cts-app.log"

# -- a checkpoint routed through gcs-2 --
out=$(gca-ctl --gcs "$ep2" checkpoint "$gid" 2>&1); rc=$?
expect_eq "checkpoint through gcs-2 (the CTS is linked to gcs-1): exit 0" "$rc" 0
id1=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
case "$out" in *"seq 1 at cts-app"*) pass "it has seq 1 at cts-app" ;; *) fail "it has seq 1 at cts-app" "$out" ;; esac
for s in 1 2; do
	check "subscriber of gcs-$s heard the checkpoint" wait_for 10 grep -q "\"checkpoint\": \"$id1\"" "$TEST_TMP/sub$s"
	check "subscriber of gcs-$s heard the binding" grep -q "\"event\": \"bound\", \"gid\": \"$gid\"" "$TEST_TMP/sub$s"
done
sleep 1	# any echo that would double an event has arrived by now
for s in 1 2; do
	expect_eq "subscriber of gcs-$s heard that checkpoint once" "$(grep -c "\"checkpoint\": \"$id1\"" "$TEST_TMP/sub$s")" 1
	expect_eq "subscriber of gcs-$s heard the binding once" "$(grep -c "\"event\": \"bound\", \"gid\": \"$gid\"" "$TEST_TMP/sub$s")" 1
done

# -- gca-ctl with the list: a checkpoint through whichever answers --
check "gca-ctl with both endpoints (site.env)" gca-ctl checkpoint "$gid"

# -- gcs-1 killed: the CTS moves to gcs-2, gca-ctl skips the dead one; nothing lost or doubled --
kill -9 "$(cat "$site/gcs.pid")"
check "the CTS moved to gcs-2 and registered there" wait_for 20 grep -q "registered at the GCS $ep2" "$site/log/cts-app.log"
ok_ids=()
for k in 1 2 3 4 5; do
	out=$(gca-ctl checkpoint "$gid" 2>&1) && ok_ids+=("$(awk '$1=="checkpoint"{print $2}' <<<"$out")") ||
		fail "checkpoint $k with gcs-1 dead" "$out"
done
expect_eq "five checkpoints through the list with gcs-1 dead" "${#ok_ids[@]}" 5
check "the subscriber of gcs-2 heard them" wait_for 10 grep -q "\"checkpoint\": \"${ok_ids[4]}\"" "$TEST_TMP/sub2"
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
seqs=$(ldapsearch -LLL -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid))" gcaSequenceNumber | awk '/^gcaSequenceNumber/{print $2}' | sort -n | tr '\n' ' ')
expect_eq "the directory holds seq 1..7, each once" "$seqs" "1 2 3 4 5 6 7 "
missing=0
for id in "${ok_ids[@]}"; do
	ldapsearch -LLL -x -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(gcaCheckpointId=$id)" dn | grep -q '^dn:' || missing=$((missing + 1))
done
expect_eq "every checkpoint acknowledged is recorded" "$missing" 0

# -- a GCS killed in the middle of a stream of checkpoints: first gcs-2 (the CTS's, since gcs-1 was
#    killed), then gcs-1 (gca-ctl's first, and the CTS's again): both move, mid-request --
records() { ldapsearch -LLL -x -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid))" dn | grep -c '^dn:'; }
for victim in 2 1; do
	check "gca-site up (every GCS running)" gca-site up "$site"
	check "the CTS is registered" wait_for 20 sh -c "gca-ctl checkpoint '$gid' >/dev/null"
	before=$(records)
	( for k in $(seq 20); do gca-ctl checkpoint "$gid" 2>&1 || echo FAILED; done ) > "$TEST_TMP/stream$victim" &
	stream=$!
	sleep 0.5
	if [ "$victim" = 1 ]; then kill -9 "$(cat "$site/gcs.pid")"; else kill -9 "$(cat "$site/gcs-2.pid")"; fi
	wait $stream
	expect_eq "gcs-$victim killed under twenty checkpoints: all acknowledged" "$(grep -c '^checkpoint' "$TEST_TMP/stream$victim")" 20
	grep -v '^checkpoint' "$TEST_TMP/stream$victim" | sed 's/^/# /'
	sleep 1
	expect_eq "twenty records more in the directory, none lost or doubled" "$(( $(records) - before ))" 20
	dups=$(ldapsearch -LLL -x -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid))" gcaProperty | grep '^gcaProperty: idem=' | sort | uniq -d | wc -l)
	expect_eq "no idempotency key recorded twice" "$dups" 0
done

# -- a GCS killed while the checkpoint it forwarded is being taken (the job's save takes seconds: a
#    400 MB pad written and fsynced, then copied and hashed): gca-ctl asks the next GCS with the
#    same key, and the CTS answers that retry with the checkpoint under way: one image, one record --
check "gca-site up (every GCS running)" gca-site up "$site"
gid2=two-gcs-slow
gca-exec --gid "$gid2" -- "$counter" --log "$TEST_TMP/slow.log" --tick 50 --pad 400000000 &
slow=$!
on_exit "kill -9 $slow"
check "a job with a slow save runs" wait_for 10 grep -q 'counter 1' "$TEST_TMP/slow.log"
gca-ctl --gcs "$ep1,$ep2" checkpoint "$gid2" --key slow-1 > "$TEST_TMP/slow.out" 2> "$TEST_TMP/slow.err" &
ck=$!
check "the checkpoint reached the job through gcs-1 (it is writing its image)" \
	wait_for 15 sh -c "ls '$site'/cts/cts-app/staging/*/pad"
kill -9 "$(cat "$site/gcs.pid")"
wait $ck; rc=$?
expect_eq "gca-ctl, its GCS killed mid-request: exit 0" "$rc" 0
check "  it said it tried the next GCS" grep -q "lost the GCS $ep1 .*trying the next" "$TEST_TMP/slow.err"
check "  and got the checkpoint" grep -qE "^checkpoint [0-9a-f-]+ of $gid2: seq 1 at cts-app$" "$TEST_TMP/slow.out"
got=$(ldapsearch -LLL -x -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid2))" gcaProperty | grep -c '^gcaProperty: idem=slow-1$')
expect_eq "  one record in the directory, with its key" "$got" 1
expect_eq "  one image at the CTS" "$(ls "$site/cts/cts-app/images/$gid2" | wc -l)" 1
check "  the one in the reply" grep -q "$(ls "$site/cts/cts-app/images/$gid2")" "$TEST_TMP/slow.out"
kill -9 $slow

# -- a subscription given both endpoints moves to the next GCS when its own dies --
check "gca-site up (every GCS running) for a subscription" gca-site up "$site"
gca-ctl --gcs "$ep1,$ep2" --json subscribe > "$TEST_TMP/sub5" 2> "$TEST_TMP/sub5.err" &
sub5=$!
on_exit "kill $sub5"
check "a subscription through gcs-1 listens" wait_for 10 grep -q listening "$TEST_TMP/sub5.err"
kill -9 "$(cat "$site/gcs.pid")"
check "  gcs-1 killed: it subscribes through the next GCS" wait_for 15 grep -q 'subscribing through the next GCS' "$TEST_TMP/sub5.err"
out=$(gca-ctl --gcs "$ep2" checkpoint "$gid" 2>&1) || fail "a checkpoint through gcs-2" "$out"
id=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
check "  and hears a checkpoint made through gcs-2" wait_for 10 grep -q "\"checkpoint\": \"$id\"" "$TEST_TMP/sub5"
kill $sub5

# -- gcs-1 back (gca-site up): the subscription on gcs-1 was lost, a new one hears gcs-2's events --
check "gca-site up again brings gcs-1 back" gca-site up "$site"
gca-ctl --gcs "$ep1" --json subscribe > "$TEST_TMP/sub3" 2>/dev/null &
sub3=$!
on_exit "kill $sub3"
sleep 1
out=$(gca-ctl --gcs "$ep2" checkpoint "$gid" 2>&1) || fail "a checkpoint through gcs-2" "$out"
id=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
check "the restarted gcs-1 relays a checkpoint made through gcs-2" wait_for 10 grep -q "\"checkpoint\": \"$id\"" "$TEST_TMP/sub3"

# -- the job ends: both GCS's subscribers hear "unbound", once --
gca-ctl --gcs "$ep2" --json subscribe > "$TEST_TMP/sub4" 2>/dev/null &
sub4=$!
on_exit "kill $sub4"
sleep 1
kill -9 $job
for s in 3 4; do
	check "subscriber $s heard the job end" wait_for 15 grep -q "\"event\": \"unbound\", \"gid\": \"$gid\"" "$TEST_TMP/sub$s"
done
sleep 1
for s in 3 4; do
	expect_eq "subscriber $s heard it once" "$(grep -c "\"event\": \"unbound\", \"gid\": \"$gid\"" "$TEST_TMP/sub$s")" 1
done

# -- the CTS killed and restarted: it registers at gcs-1, the first of its list, while gcs-2, where
#    it was since gcs-1 was killed, still runs; when its heartbeats there are overdue, gcs-2 must
#    not mark down in the directory a CTS that is up at gcs-1 --
ctsent() { ldapsearch -LLL -x -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=cts,$GCA_BASE_DN" '(cn=cts-app)' gcaStatus gcaProperty; }
check "the CTS is at gcs-2" sh -c "ldapsearch -LLL -x -o ldif-wrap=no -H '$GCA_LDAP_URI' -b 'ou=cts,$GCA_BASE_DN' '(cn=cts-app)' gcaProperty | grep -q '^gcaProperty: gcs=.*-2\$'"
logstart=$(stat -c %s "$site/log/gcs-2.log")
kill -9 "$(cat "$site/cts-app.pid")"
check "the CTS killed and restarted (gca-site up)" gca-site up "$site"
check "  it registers at gcs-1" wait_for 20 grep -q "registered at the GCS $ep1" "$site/log/cts-app.log"
check "gcs-2: the CTS's heartbeats there are overdue" \
	wait_for 30 sh -c "tail -c +$((logstart + 1)) '$site/log/gcs-2.log' | grep -q 'CTS cts-app is down (no heartbeat)'"
sleep 2
out=$(ctsent)
if grep -qx 'gcaStatus: ok' <<<"$out" && grep -q '^gcaProperty: gcs=.*-1$' <<<"$out"; then pass "  the directory still says ok, at gcs-1"
else fail "  the directory still says ok, at gcs-1" "$out"; fi
check "  gca-ctl cts lists cts-app ok" sh -c "gca-ctl cts --status ok | grep -q cts-app"

# -- gcs-1 stopped (SIGSTOP): the connection stays open, nothing answers; the CTS leaves it for
#    gcs-2 after three heartbeats and two seconds, as it leaves one that closed --
g1=$(cat "$site/gcs.pid")
on_exit "kill -CONT $g1"
ctsstart=$(stat -c %s "$site/log/cts-app.log")
kill -STOP "$g1"
check "gcs-1 stopped: the CTS says it answers nothing and moves" \
	wait_for 20 sh -c "tail -c +$((ctsstart + 1)) '$site/log/cts-app.log' | grep -q 'the GCS $ep1 has answered nothing for'"
check "  it registers at gcs-2" \
	wait_for 20 sh -c "tail -c +$((ctsstart + 1)) '$site/log/cts-app.log' | grep -q 'registered at the GCS $ep2'"
check "  gcs-2 lists it ok" sh -c "gca-ctl --gcs '$ep2' cts --status ok | grep -q cts-app"
kill -CONT "$g1"

# -- gca-ctl with both dead: a clear error naming both --
kill -9 "$(cat "$site/gcs.pid")" "$(cat "$site/gcs-2.pid")"
out=$(gca-ctl status 2>&1); rc=$?
expect_eq "gca-ctl with every GCS down: exit 1" "$rc" 1
case "$out" in *"$ep1"*"$ep2"*) pass "and the error names both endpoints" ;; *) fail "and the error names both endpoints" "$out" ;; esac
done_testing
