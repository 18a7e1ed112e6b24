# tests/run itself: a cmocka skip() is a part not run (a failure under CI=true), never a pass; a
# suite that checks nothing and says nothing fails; a process a suite leaves running is named,
# stopped and counted as a failure. The rules (tests/judge.sh) on sample logs, then the runner on
# small programs built here in a build folder of its own.
# timeout: 60
. "$GCA_TOP/tests/lib.sh"
. "$GCA_TOP/tests/judge.sh"
test_tmpdir
unset CI	# set again where a check wants it
command -v cc >/dev/null || not_run integration/runner "no C compiler (make deps)"
printf '#include <cmocka.h>\n' | cc -E -include stdarg.h -include stddef.h -include setjmp.h - \
    >/dev/null 2>&1 || not_run integration/runner "no cmocka.h (make deps)"

# judged NAME KIND LOG RC: judge_log's verdict as "pass fail skip", its printed lines in $TEST_TMP/said
judged() {
	judge_log "$1" "$2" "$3" "$4" 30 > "$TEST_TMP/said"
	echo "$judge_pass $judge_fail $judge_skip"
}
said() { grep -qF -- "$1" "$TEST_TMP/said"; }

# a cmocka program with one test passed and one skipped, as cmocka 1.1 prints it
fake=$TEST_TMP/build/tests/unit
mkdir -p "$fake" "$TEST_TMP/build/tests/integration"
cat > "$TEST_TMP/oneskip.c" <<'EOF'
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
static void passes(void **state) { (void)state; }
static void skips(void **state) { (void)state; skip(); }
int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(passes), cmocka_unit_test(skips) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
EOF
check "a one-skip cmocka program builds" cc -o "$fake/test_oneskip" "$TEST_TMP/oneskip.c" -lcmocka
CMOCKA_MESSAGE_OUTPUT=stdout "$fake/test_oneskip" > "$TEST_TMP/oneskip.log" 2>&1
expect_eq "it exits 0 (cmocka does not fail a skip)" "$?" 0

expect_eq "one skip: 1 passed, 0 failed, 1 not run" "$(judged unit/oneskip cmocka "$TEST_TMP/oneskip.log" 0)" "1 0 1"
got=$(CI=true judged unit/oneskip cmocka "$TEST_TMP/oneskip.log" 0)
expect_eq "one skip under CI=true: 1 passed, 1 failed, 0 not run" "$got" "1 1 0"
check "  named as not run, with the test's name" said "unit/oneskip: not run: 1 cmocka test(s) skipped: skips"
check "  and why it fails" said "CI=true: a suite that does not run is a failure"

# a test that says "not run" and then skips is one part not run
{ echo "unit/x: not run: needs root"; cat "$TEST_TMP/oneskip.log"; } > "$TEST_TMP/said-and-skipped.log"
expect_eq "said not run, then skip(): one part not run" \
    "$(judged unit/x cmocka "$TEST_TMP/said-and-skipped.log" 0)" "1 0 1"

: > "$TEST_TMP/empty.log"
printf '# setting up\n' > "$TEST_TMP/nothing.log"
expect_eq "a shell suite with no ok line and exit 0 fails" "$(judged integration/x sh "$TEST_TMP/nothing.log" 0)" "0 1 0"
check "  saying so" said 'integration/x: no check ran, and it did not say "integration/x: not run: <reason>"'
expect_eq "an empty cmocka log with exit 0 fails" "$(judged unit/x cmocka "$TEST_TMP/empty.log" 0)" "0 1 0"
printf 'integration/x: not run: no qemu\n' > "$TEST_TMP/notrun.log"
expect_eq "a suite that says not run is skipped" "$(judged integration/x sh "$TEST_TMP/notrun.log" 0)" "0 0 1"
expect_eq "  and fails under CI=true" "$(CI=true judged integration/x sh "$TEST_TMP/notrun.log" 0)" "0 1 0"
printf 'ok - a\nok - b\n# a comment\n' > "$TEST_TMP/two.log"
expect_eq "two ok lines: 2 passed" "$(judged integration/x sh "$TEST_TMP/two.log" 0)" "2 0 0"
expect_eq "  that timed out: a failure" "$(judged integration/x sh "$TEST_TMP/two.log" 124)" "2 1 0"
check "  saying so" said "integration/x: timed out after 30s"
expect_eq "  that exited 1: a failure" "$(judged integration/x sh "$TEST_TMP/two.log" 1)" "2 1 0"

# cmocka 1.1.7 (Debian 13) names the group in its summary lines; 1.1.5 (Debian 12) does not
printf '%s\n' '[  PASSED  ] 1 test(s).' '[  FAILED  ] tests: 2 test(s), listed below:' \
    '[  FAILED  ] a' '[  FAILED  ] b' > "$TEST_TMP/c117-failed.log"
expect_eq "cmocka 1.1.7's 'tests: 2 test(s)' failed: 2 failed" \
    "$(judged unit/x c "$TEST_TMP/c117-failed.log" 1)" "1 2 0"
printf '%s\n' '[  SKIPPED ] s' '[  PASSED  ] 1 test(s).' '[  SKIPPED ] tests: 1 test(s), listed below:' \
    '[  SKIPPED ] s' > "$TEST_TMP/c117-skipped.log"
expect_eq "  and its 'tests: 1 test(s)' skipped: 1 not run" \
    "$(judged unit/x c "$TEST_TMP/c117-skipped.log" 0)" "1 0 1"
check "  named once" said "unit/x: not run: 1 cmocka test(s) skipped: s"

# the runner itself, on programs in a build folder of its own
run() { GCA_BUILD=$TEST_TMP/build GCA_LEFTOVER_GRACE=1 "$GCA_TOP/tests/run" "$@" 2>&1; }
out=$(run --only unit/test_oneskip); rc=$?
expect_eq "tests/run on the one-skip program: exit 0" "$rc" 0
check "  1 passed, 1 skipped" grep -q '^total: 1 passed, 0 failed, 1 skipped' <<< "$out"
out=$(CI=true run --only unit/test_oneskip); rc=$?
if [ "$rc" -ne 0 ]; then pass "CI=true tests/run on it fails (exit $rc)"; else fail "CI=true tests/run on it fails" "$out"; fi
check "  1 failed" grep -q '^total: 1 passed, 1 failed, 0 skipped' <<< "$out"
check "  naming the skipped test" grep -q '^unit/test_oneskip: not run: 1 cmocka test(s) skipped: skips' <<< "$out"

# a suite that leaves three processes behind: one detached with setsid, one orphaned to init, one
# detached and stopped (SIGSTOP; in a session of its own, or its orphaned group would get SIGHUP)
cp "$(command -v sleep)" "$TEST_TMP/leaky-sleep"
cat > "$TEST_TMP/build/tests/integration/test_leaky" <<EOF
#!/bin/sh
setsid "$TEST_TMP/leaky-sleep" 41 >/dev/null 2>&1 &
( "$TEST_TMP/leaky-sleep" 42 >/dev/null 2>&1 & )
setsid "$TEST_TMP/leaky-sleep" 43 >/dev/null 2>&1 &
p=\$! i=0
# all three have become leaky-sleep (under load an exec may come late, and be named as sh)
while { ! grep -q leaky-sleep /proc/\$p/cmdline || [ "\$(pgrep -fc "^$TEST_TMP/leaky-sleep 4[12]")" -lt 2 ]; } &&
    [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
kill -STOP \$p
echo "[  PASSED  ] 1 test(s)."
EOF
chmod +x "$TEST_TMP/build/tests/integration/test_leaky"
out=$(run --only test_leaky); rc=$?
if [ "$rc" -ne 0 ]; then pass "a suite leaving processes running fails (exit $rc)"; else fail "a suite leaving processes running fails" "$out"; fi
pids=$(sed -n 's/^  integration\/test_leaky: left running: pid \([0-9]*\): .*leaky-sleep 4[123] *$/\1/p' <<< "$out")
on_exit kill -KILL $pids
on_exit pkill -KILL -f "$TEST_TMP/leaky-sleep"
expect_eq "  all three are named (pid and command line)" "$(wc -w <<< "$pids")" 3
check "  counted in the total" grep -q '^total: 1 passed, 1 failed, 0 skipped' <<< "$out"
# gone, or a zombie its parent has not reaped yet
gone() { local p; for p in $pids; do grep -qs '^State:[[:space:]]*[^Z]' "/proc/$p/status" && return 1; done; return 0; }
if wait_for 3 gone; then pass "  and they were ended"; else fail "  and they were ended" "$(ps -o pid,stat,args -p "${pids// /,}")"; fi
done_testing
