# gca-exec and gca-recover when there is no CTS to talk to: usage, no socket, a socket nobody
# listens on. The job must never run then. (Their happy paths run against a real gca-cts in the
# scenario suite.)
# timeout: 30
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
cd "$TEST_TMP" || exit 1
unset GCA_CTS_SOCKET
ran=$TEST_TMP/ran
ckpt=0190a1b2-0000-7000-8000-000000000001

# expect_fail WHAT RC PATTERN COMMAND...: the command exits RC, its stderr matches PATTERN (a
# shell glob), and the job (touch $ran) did not run.
expect_fail() {
	local what=$1 want=$2 pattern=$3 out rc
	shift 3
	rm -f "$ran"
	out=$("$@" 2>&1 >/dev/null); rc=$?
	expect_eq "$what: exit $want" "$rc" "$want"
	# shellcheck disable=SC2254
	case "$out" in $pattern) pass "$what: says so" ;; *) fail "$what: says so" "$out" ;; esac
	if [ -e "$ran" ]; then fail "$what: the job did not run"; else pass "$what: the job did not run"; fi
}

# A unix socket that exists but where nothing listens (bound, never listening).
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$TEST_TMP/dead.sock"

for prog in gca-exec gca-recover; do
	if [ $prog = gca-exec ]; then args=(--gid job-1); else args=(--gid job-1 --checkpoint latest); fi

	# -- usage --
	out=$($prog --help); rc=$?
	expect_eq "$prog --help: exit 0" "$rc" 0
	case "$out" in "usage: $prog --gid GID"*) pass "$prog --help: usage on stdout" ;; *) fail "$prog --help: usage on stdout" "$out" ;; esac
	expect_fail "$prog without --gid" 2 "usage: $prog *" $prog --cts "$TEST_TMP/dead.sock" -- touch "$ran"
	expect_fail "$prog without a job" 2 "usage: $prog *" $prog "${args[@]}" --cts "$TEST_TMP/dead.sock" --
	expect_fail "$prog with an unknown option" 2 "*usage: $prog *" $prog "${args[@]}" --bogus -- touch "$ran"
	expect_fail "$prog with a GID holding a newline" 2 "*bad GID*" $prog --gid "$(printf 'a\nb')" "${args[@]:2}" -- touch "$ran"
	# the directory would take " job-1" for job-1: refused here as by gca-ctl and the GCS
	expect_fail "$prog with a GID starting with a space" 2 "*bad GID \" job-1\": a space at its start or end*" \
	    $prog --gid " job-1" "${args[@]:2}" --cts "$TEST_TMP/dead.sock" -- touch "$ran"
	expect_fail "$prog with a GID ending with a space" 2 "*bad GID*" $prog --gid "job-1 " "${args[@]:2}" --cts "$TEST_TMP/dead.sock" -- touch "$ran"

	# -- no CTS --
	expect_fail "$prog without a socket" 1 \
	    "$prog: no CTS socket: give --cts or set GCA_CTS_SOCKET (gca-site writes it in site.env)" \
	    $prog "${args[@]}" -- touch "$ran"
	expect_fail "$prog --cts /nonexistent" 1 "$prog: cannot reach the CTS at /nonexistent: *No such file*" \
	    $prog "${args[@]}" --cts /nonexistent -- touch "$ran"
	expect_fail "$prog with GCA_CTS_SOCKET=/nonexistent" 1 "*CTS at /nonexistent*" \
	    env GCA_CTS_SOCKET=/nonexistent $prog "${args[@]}" -- touch "$ran"
	expect_fail "$prog on a socket nobody listens on" 1 \
	    "$prog: cannot reach the CTS at $TEST_TMP/dead.sock: *refused*gca-cts running*" \
	    $prog "${args[@]}" --cts "$TEST_TMP/dead.sock" -- touch "$ran"
	expect_fail "$prog names a relative socket by its absolute path" 1 "*CTS at $TEST_TMP/dead.sock:*" \
	    $prog "${args[@]}" --cts dead.sock -- touch "$ran"
	expect_fail "$prog on a plain file" 1 "*CTS at $TEST_TMP/ran.txt:*" \
	    sh -c ': > ran.txt; exec "$@"' sh $prog "${args[@]}" --cts ran.txt -- touch "$ran"
done

# -- flags only one of them has --
expect_fail "gca-exec with a bad --checkpoint-every" 2 "gca-exec: bad --checkpoint-every*" \
    gca-exec --gid job-1 --checkpoint-every soon -- touch "$ran"
expect_fail "gca-recover with a bad --checkpoint-every" 2 "gca-recover: bad --checkpoint-every*" \
    gca-recover --gid job-1 --checkpoint latest --checkpoint-every 0 -- touch "$ran"
expect_fail "gca-exec --checkpoint-every auto is taken (then: no CTS)" 1 "*CTS at /nonexistent*" \
    gca-exec --gid job-1 --checkpoint-every auto --cts /nonexistent -- touch "$ran"
expect_fail "gca-recover --checkpoint-every auto is taken (then: no CTS)" 1 "*CTS at /nonexistent*" \
    gca-recover --gid job-1 --checkpoint latest --checkpoint-every auto --cts /nonexistent -- touch "$ran"
expect_fail "gca-exec --checkpoint-every automatic is refused" 2 "*bad --checkpoint-every \"automatic\" (say 30s, 5m, 2h or auto)*" \
    gca-exec --gid job-1 --checkpoint-every automatic -- touch "$ran"
expect_fail "gca-recover without --checkpoint" 2 "usage: gca-recover *" \
    gca-recover --gid job-1 -- touch "$ran"
expect_fail "gca-recover with a checkpoint that is not an id" 2 "gca-recover: bad checkpoint*" \
    gca-recover --gid job-1 --checkpoint ../../etc -- touch "$ran"
expect_fail "gca-recover --checkpoint ID --cts /nonexistent" 1 "*CTS at /nonexistent*" \
    gca-recover --gid job-1 --checkpoint $ckpt --cts /nonexistent -- touch "$ran"
done_testing
