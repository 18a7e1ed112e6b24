# make demo's script, end to end, in a temp folder; its claims checked against the job's own log.
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
run=$TEST_TMP/run
on_exit "gca-demo stop $run"
out=$(cd "$TEST_TMP" && gca-demo --help); rc=$?
case "$rc $out" in "0 usage:"*"gca-demo stop"*) pass "gca-demo --help: usage, exit 0" ;; *) fail "gca-demo --help: usage, exit 0" "$rc $out" ;; esac
out=$(cd "$TEST_TMP" && gca-demo --bogus 2>&1); rc=$?
case "$rc $out" in "2 gca-demo: unknown option --bogus"*usage:*) pass "gca-demo --bogus: exit 2, names it" ;; *) fail "gca-demo --bogus: exit 2, names it" "$rc $out" ;; esac
check "and makes no folder of it" test ! -e "$TEST_TMP/--bogus" -a ! -e "$TEST_TMP/--help"
out=$(GCA_BUILD=$GCA_BUILD gca-demo "$run" 2>&1); rc=$?
expect_eq "gca-demo runs the whole story: exit 0" "$rc" 0
[ $rc -eq 0 ] || echo "$out" | tail -20 | sed 's/^/#   /'
for s in "1. A site" "2. A job starts" "3. A broker checkpoints" "4. The records" "5. The job dies" "6. gca-recover" "Done"; do
	grep -qF "$s" <<<"$out" && pass "it says: $s" || fail "it says: $s"
done
log=$run/demo/counter.log
saved=$(sed -n 's/^the image of .* holds the count \([0-9]*\)$/\1/p' <<<"$out")
restored=$(awk '$1=="restored"{print $2}' "$log")
expect_eq "the job restored the latest checkpoint's count" "$restored" "$saved"
first=$(awk 'f && $1=="counter"{print $2; exit} $1=="restored"{f=1}' "$log")
expect_eq "and went on from it" "$first" "$((saved + 1))"
n=$(grep -c '^gcaSequenceNumber: ' <<<"$out")
expect_eq "ldapsearch showed two records" "$n" 2
check "the recovered job is still running" kill -0 "$(cat "$run/demo/recover.pid")"
check "gca-demo stop ends it all" gca-demo stop "$run"
if gca-site status "$run" >/dev/null 2>&1; then fail "gca-site status says stopped"; else pass "gca-site status says stopped"; fi
expect_eq "nothing of the demo runs after stop (the recovered job neither)" "$(site_procs "$run")" ""
done_testing
