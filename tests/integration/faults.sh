# The fault campaign's short run (tests/faults/campaign.sh; `make faults` runs it long, see
# docs/FAULTS.md), after the losses it found, each replayed on purpose:
# (1) retention and a record still in the outbox: a checkpoint taken while slapd is dead keeps its
#     record in the CTS's outbox (sent again at the next heartbeat, here 10 s); newer checkpoints recorded
#     meanwhile must not let retention remove its image, or the record is stored later naming an
#     image that is gone, never expired.
# timeout: 200
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
on_exit "gca-site down $site"
counter=$GCA_BUILD/examples/counter

# ---- (1) retention 1, a record in the outbox ----
outbox_has() { outbox_held "$site/cts/cts-app/outbox" | grep -qxF "$1"; }
outbox_lacks() { ! outbox_has "$1"; }
export GCA_SITE_HEARTBEAT=10 GCA_SITE_CTS_EXTRA="retention 1"
check "gca-site up (cts-app with retention 1, heartbeat 10 s)" gca-site up "$site"
. "$site/site.env"
gca-exec --gid keep-job -- "$counter" --log "$TEST_TMP/keep.log" --tick 20 --slow-saves 500 &
job=$!
on_exit "kill -9 $job"
check "a job runs (each save takes 0.5 s)" wait_for 10 grep -q '^counter 3' "$TEST_TMP/keep.log"
check "a first checkpoint" gca-ctl checkpoint keep-job
# slapd killed while the job saves: the record finds no directory
gca-ctl checkpoint keep-job > "$TEST_TMP/x.out" 2>&1 &
ctl=$!
wait_for 10 sh -c "ls '$site'/cts/cts-app/staging/* >/dev/null 2>&1"
kill -9 "$(cat "$site/ldap/slapd.pid")"
wait $ctl && fail "a checkpoint whose record finds slapd dead fails" "$(cat "$TEST_TMP/x.out")"
x=$(grep -o 'checkpoint [0-9a-f-]* of keep-job (external) failed: the image is kept' "$site/log/cts-app.log" | tail -1 | cut -d' ' -f2)
check "with slapd dead: the image $x is kept, its record in the outbox" outbox_has "${x:-none}"
check "slapd back (gca-site up)" gca-site up "$site"
# at once, before the next heartbeat sends the outbox again: a newer checkpoint, recorded
check "a newer checkpoint, recorded before the outbox is sent again" wait_for 10 gca-ctl checkpoint keep-job
check "the outbox is sent again: $x is stored" wait_for 15 outbox_lacks "$x"
check "one more checkpoint (retention runs again)" gca-ctl checkpoint keep-job
sleep 1
rec=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(gcaCheckpointId=$x)" gcaStatus dn)
if ! grep -q '^dn:' <<<"$rec"; then
	fail "the record of $x is in the directory" "$rec"
elif grep -q '^gcaStatus: expired' <<<"$rec"; then
	pass "$x was removed by retention after its record was stored, and its record says expired"
else
	check "$x's record is not expired: its image is on disk" test -f "$site/cts/cts-app/images/keep-job/$x/manifest"
fi
kill -9 $job; wait $job 2>/dev/null
gca-site down "$site" >/dev/null

# ---- the short campaign: every kind of fault at least once, each count 0 ----
bash "$GCA_TOP/tests/faults/campaign.sh" --seconds 20 --hold 2 --gap 1 --out "$TEST_TMP/campaign" ||
	TEST_FAILS=$((TEST_FAILS + 1))
done_testing
