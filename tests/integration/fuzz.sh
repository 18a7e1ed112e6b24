# A short libFuzzer run of each harness (make fuzz runs them longer): the decoder, bytes through
# the real proto_conn into the GCS's and the CTS's dispatch tables, hostile peers answering
# their clients (over TLS and through the network process), hostile holders answering an image
# fetch, the CTS's control socketpair read by its root parent, and a peer's bytes through its
# network process's relay (tests/fuzz).
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
command -v clang >/dev/null || not_run fuzz "clang is not installed (make deps installs it)"
command -v openssl >/dev/null || not_run fuzz "openssl is not installed (make deps installs it)"
test_tmpdir
check "the fuzz targets build" make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" \
	"$GCA_BUILD/fuzz/fuzz_decode" "$GCA_BUILD/fuzz/fuzz_server" "$GCA_BUILD/fuzz/fuzz_client" \
	"$GCA_BUILD/fuzz/fuzz_client_relayed" "$GCA_BUILD/fuzz/fuzz_fetch" "$GCA_BUILD/fuzz/fuzz_ctl" \
	"$GCA_BUILD/fuzz/fuzz_relay"
check "the decoder runs 5 s without a crash" \
	make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=5 run-fuzz_decode
# The server harness's table of handlers reached: every table is reached, as each role.
if TMPDIR=$TEST_TMP make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=15 run-fuzz_server \
    >"$TEST_TMP/server.log" 2>&1; then
	pass "the servers' dispatch tables run 15 s without a crash, leak or hang"
else
	fail "the servers' dispatch tables run 15 s without a crash, leak or hang" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz:' "$TEST_TMP/server.log")"
fi
for h in "cts_register .* [1-9][0-9]* *0 *0$" "^  do_checkpoint  *0  *[1-9]" "local_info .* [1-9][0-9]*$" \
    "local_vm_take .* [1-9][0-9]*$"; do
	if grep -q -- "$h" "$TEST_TMP/server.log"; then
		pass "a handler reached: /$h/"
	else
		fail "a handler reached: /$h/" "$(grep -A16 '^table gcs' "$TEST_TMP/server.log" | head -20)"
	fi
done
# The client side: hostile peers answering the GCS and the CTS, over real TLS (fuzz_client) and
# through the network process with no TLS (fuzz_client_relayed).
for h in fuzz_client fuzz_client_relayed; do
	if TMPDIR=$TEST_TMP make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=5 run-$h \
	    >"$TEST_TMP/$h.log" 2>&1; then
		pass "$h: hostile peers answer the GCS and the CTS for 5 s without a crash, leak or hang"
	else
		fail "$h: hostile peers answer the GCS and the CTS for 5 s without a crash, leak or hang" \
		    "$(grep -m3 'ERROR\|runtime error\|fuzz:' "$TEST_TMP/$h.log")"
	fi
	for who in cts-fuzz-cts gcs-fuzz-gcs; do
		if grep -q "hostile $who peers: [1-9][0-9]* connections, [1-9]" "$TEST_TMP/$h.log"; then
			pass "$h: the daemons connected to hostile $who peers and sent them frames"
		else
			fail "$h: the daemons connected to hostile $who peers and sent them frames" \
			    "$(grep hostile "$TEST_TMP/$h.log")"
		fi
	done
done
# Hostile holders answering the CTS's image fetch.
if make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=5 run-fuzz_fetch \
    >"$TEST_TMP/fetch.log" 2>&1 &&
    grep -q "image_fetch requests sent them [1-9][0-9]*" "$TEST_TMP/fetch.log" &&
    grep -q "fetches: fetched 0 refused [1-9][0-9]* not_fetched [1-9]" "$TEST_TMP/fetch.log"; then
	pass "hostile holders answer an image fetch 5 s: no crash, leak or hang, nothing fetched"
else
	fail "hostile holders answer an image fetch 5 s: no crash, leak or hang, nothing fetched" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz_fetch:' "$TEST_TMP/fetch.log")"
fi
# The root parent's side of the control socketpair: any message, with 0, 1 or 2 descriptors.
if make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=5 run-fuzz_ctl \
    >"$TEST_TMP/ctl.log" 2>&1; then
	pass "control messages from the network process run 5 s without a crash, leak or hang"
else
	fail "control messages from the network process run 5 s without a crash, leak or hang" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz_ctl:' "$TEST_TMP/ctl.log")"
fi
if grep -q "outcome:.* too_long [1-9].* two_fds [1-9].* net_refused_counted [1-9][0-9]* taken [1-9]" \
    "$TEST_TMP/ctl.log"; then
	pass "the parent both took and refused control messages"
else
	fail "the parent both took and refused control messages" "$(grep 'fuzz_ctl:' "$TEST_TMP/ctl.log")"
fi
# The network process's relay: what reaches the daemon from a peer decodes, whole.
if make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=5 run-fuzz_relay \
    >"$TEST_TMP/relay.log" 2>&1 &&
    grep -q "to the daemon [1-9][0-9]*, errors to the peer [1-9][0-9]*, links closed [1-9]" \
    "$TEST_TMP/relay.log"; then
	pass "a peer's bytes through the relay 5 s: frames passed, answered err, links closed"
else
	fail "a peer's bytes through the relay 5 s: frames passed, answered err, links closed" \
	    "$(grep -m3 'ERROR\|runtime error\|fuzz_relay:' "$TEST_TMP/relay.log")"
fi
ls -d "$TEST_TMP"/gca-fuzz-state.* >/dev/null 2>&1 && fail "the harness left its state folder behind"
done_testing
