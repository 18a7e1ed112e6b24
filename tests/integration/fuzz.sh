# A short libFuzzer run of each harness (make fuzz runs them longer): the decoder, and bytes
# through the real proto_conn into the GCS's and the CTS's dispatch tables (tests/fuzz).
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
command -v clang >/dev/null || not_run fuzz "clang is not installed (make deps installs it)"
command -v openssl >/dev/null || not_run fuzz "openssl is not installed (make deps installs it)"
test_tmpdir
check "the fuzz targets build" make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" \
	"$GCA_BUILD/fuzz/fuzz_decode" "$GCA_BUILD/fuzz/fuzz_server"
check "the decoder runs 10 s without a crash" \
	make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=10 run-fuzz_decode
# The server harness's table of handlers reached: every table is reached, as each role.
if TMPDIR=$TEST_TMP make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=25 run-fuzz_server \
    >"$TEST_TMP/server.log" 2>&1; then
	pass "the servers' dispatch tables run 25 s without a crash, leak or hang"
else
	fail "the servers' dispatch tables run 25 s without a crash, leak or hang" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz:' "$TEST_TMP/server.log")"
fi
for h in "cts_register .* [1-9][0-9]* *0 *0$" "^  do_checkpoint  *0  *[1-9]" "local_info .* [1-9][0-9]*$"; do
	if grep -q -- "$h" "$TEST_TMP/server.log"; then
		pass "a handler reached: /$h/"
	else
		fail "a handler reached: /$h/" "$(grep -A16 '^table gcs' "$TEST_TMP/server.log" | head -20)"
	fi
done
ls -d "$TEST_TMP"/gca-fuzz-state.* >/dev/null 2>&1 && fail "the harness left its state folder behind"
done_testing
