# A short libFuzzer run over the wire decoder (make fuzz runs longer).
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
command -v clang >/dev/null || not_run fuzz "clang is not installed (make deps installs it)"
check "the fuzz target builds and runs 15 s without a crash" \
	make -s -C "$GCA_TOP/tests/fuzz" B="$GCA_BUILD/fuzz" FUZZ_SECONDS=15 run
done_testing
