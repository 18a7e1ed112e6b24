# bench/bench_replica in its quick form (BENCH_QUICK=1: 200 records for freshness, 1,000 written while
# the replica is down): it runs, prints its figures and writes replica.json. The figures are printed,
# never asserted; what is checked is that every record reached the replica.
# timeout: 90
. "$GCA_TOP/tests/lib.sh"
bench=$GCA_BUILD/bench/bench_replica
[ -x "$bench" ] || { fail "bench_replica is built"; exit 1; }
test_tmpdir
out=$(BENCH_QUICK=1 BENCH_OUT=$TEST_TMP "$bench" 2>&1); rc=$?
expect_eq "bench_replica (quick) exits 0" "$rc" 0
echo "$out" | grep -E 'p50|catch-up|records on' | sed 's/^/# /'
json=$TEST_TMP/replica.json
check "it writes replica.json" python3 -c "import json; json.load(open('$json'))"
check "every record reached the replica (provider and replica counts equal, none never seen)" python3 -c "
import json; d = json.load(open('$json'))
c = d['catch_up']; f = d['freshness']
assert c['records_provider'] == c['records_replica'] and c['records_provider'] > 0, c
assert f['never_seen'] == 0 and f['records'] == 200, f
assert c['ms'] >= 0, c"
done_testing
