# bench/bench_replica in its quick form (BENCH_QUICK=1: 200 records for freshness, 1,000 written while
# the replica is down): it runs, writes replica.json, and bench/table prints it. The figures are
# printed, never asserted; what is checked is that every record the GCS acknowledged reached the
# provider and the replica, and that none was refused.
# timeout: 90
. "$GCA_TOP/tests/lib.sh"
bench=$GCA_BUILD/bench/bench_replica
[ -x "$bench" ] || { fail "bench_replica is built"; exit 1; }
test_tmpdir
BENCH_QUICK=1 BENCH_OUT=$TEST_TMP BENCH_DEADLINE=$(( $(date +%s) + 80 )) "$bench" >"$TEST_TMP/out" 2>&1
rc=$?
expect_eq "bench_replica (quick) exits 0" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/# /' "$TEST_TMP/out" | tail -20
json=$TEST_TMP/replica.json
check "it writes replica.json" python3 -c "import json; json.load(open('$json'))"
table=$("$GCA_TOP/bench/table" "$json" 2>&1); rc=$?
expect_eq "bench/table prints it" "$rc" 0
echo "$table" | sed 's/^/# /'
check "every record reached the provider and the replica, none refused or never seen" python3 -c "
import json; d = json.load(open('$json'))
f = {r['key']: r for r in d['figures']}
fr, w, c = f['replica_freshness'], f['replica_down_writes'], f['replica_catch_up']
assert fr['count'] == 200 and fr['errors'] == 0 and fr['never_seen'] == 0, fr
assert w['count'] == 1000 and w['errors'] == 0 and 'unanswered' not in w, w
assert c['records_acked'] == 1200, c
assert c['records_provider'] == c['records_acked'] == c['records_replica'], c
assert c['seconds'] >= 0, c
assert d['skipped'] == [] and d['meta']['stopped'] == '', d"
done_testing
