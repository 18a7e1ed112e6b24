# A short libFuzzer run of each harness (make fuzz runs them longer): the decoder, bytes through
# the real proto_conn into the GCS's and the CTS's dispatch tables, and hostile peers answering
# their clients (tests/fuzz).
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
command -v clang >/dev/null || not_run fuzz "clang is not installed (make deps installs it)"
command -v openssl >/dev/null || not_run fuzz "openssl is not installed (make deps installs it)"
test_tmpdir
check "the fuzz targets build" make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" \
	"$GCA_BUILD/fuzz/fuzz_decode" "$GCA_BUILD/fuzz/fuzz_server" "$GCA_BUILD/fuzz/fuzz_client"
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
# The client side: hostile peers over real TLS answering the GCS and the CTS.
if TMPDIR=$TEST_TMP make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=10 run-fuzz_client \
    >"$TEST_TMP/client.log" 2>&1; then
	pass "hostile peers answer the GCS and the CTS for 10 s without a crash, leak or hang"
else
	fail "hostile peers answer the GCS and the CTS for 10 s without a crash, leak or hang" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz:' "$TEST_TMP/client.log")"
fi
for who in cts-fuzz-cts gcs-fuzz-gcs; do
	if grep -q "hostile $who peers: [1-9][0-9]* connections, [1-9]" "$TEST_TMP/client.log"; then
		pass "the daemons connected to hostile $who peers and sent them frames"
	else
		fail "the daemons connected to hostile $who peers and sent them frames" \
		    "$(grep hostile "$TEST_TMP/client.log")"
	fi
done
ls -d "$TEST_TMP"/gca-fuzz-state.* >/dev/null 2>&1 && fail "the harness left its state folder behind"
done_testing
