# The criu VM suite where qemu cannot be had: tests/vm/criu.sh must say "criu-vm: not run: <reason>"
# (and stop before it builds or boots anything), and under CI=true tests/run must count that as
# a failure, never as a pass (docs/DESIGN.md, "Parts that cannot run").
# timeout: 60
. "$GCA_TOP/tests/lib.sh"
test_tmpdir

# PATH as it is, less qemu-system-x86_64: every program of every PATH folder linked into one
# folder (the first of a name wins, as in a PATH search), qemu's link removed.
farm=$TEST_TMP/bin
mkdir -p "$farm"
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
	case "$d" in /*) ;; *) d=$PWD/$d ;; esac
	[ -d "$d" ] && cp -sn "$d"/* "$farm"/ 2>/dev/null
done
rm -f "$farm/qemu-system-x86_64"
if PATH=$farm command -v qemu-system-x86_64 >/dev/null; then
	fail "qemu-system-x86_64 is out of the test's PATH" "$(PATH=$farm command -v qemu-system-x86_64)"
	exit 1
fi
check "everything else is still there (bash, awk)" env PATH="$farm" sh -c 'command -v bash && command -v awk'

# the suite itself: one line, and nothing built or booted (its cache folder stays empty)
out=$(PATH=$farm GCA_BUILD=$TEST_TMP/build bash "$GCA_TOP/tests/vm/criu.sh" 2>&1); rc=$?
case "$out" in
"criu-vm: not run: qemu-system-x86_64 is not installed (make deps)") pass "tests/vm/criu.sh says: $out" ;;
*) fail "tests/vm/criu.sh says criu-vm: not run: <reason>" "$(echo "$out" | head -5)" ;;
esac
expect_eq "it stops there (exit 0, nothing failed)" "$rc" 0
check "nothing was fetched or built for it" test ! -e "$TEST_TMP/build/vm"

# tests/run: a skip normally, a failure under CI=true (GCA_SAN=1 would leave the VM suites out, and
# so would any run but the Debian 12 one: GCA_PLATFORM=debian12 selects them here)
out=$(PATH=$farm GCA_BUILD=$TEST_TMP/build GCA_PLATFORM=debian12 env -u GCA_SAN -u CI "$GCA_TOP/tests/run" --only vm/criu 2>&1); rc=$?
expect_eq "tests/run --only vm/criu without CI: exit 0 (skipped)" "$rc" 0
check "  and it counts a skip" grep -q '^total: 0 passed, 0 failed, [1-9][0-9]* skipped' <<< "$out"
out=$(PATH=$farm CI=true GCA_BUILD=$TEST_TMP/build GCA_PLATFORM=debian12 env -u GCA_SAN "$GCA_TOP/tests/run" --only vm/criu 2>&1); rc=$?
if [ "$rc" -ne 0 ]; then pass "CI=true tests/run --only vm/criu fails (exit $rc)"; else fail "CI=true tests/run --only vm/criu fails" "exit 0: $out"; fi
check "  saying the suite did not run" grep -q '^criu-vm: not run: qemu-system-x86_64' <<< "$out"
check "  and why that is a failure" grep -q 'CI=true: a suite that does not run is a failure' <<< "$out"
check "  in its total" grep -q '^total: 0 passed, [1-9][0-9]* failed' <<< "$out"
done_testing
