# Sourced by shell suites (tests/integration/*.sh, tests/vm/*.sh).
# Each check prints "ok - what" or "not ok - what"; tests/run counts those lines.
set -u
: "${GCA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${GCA_BUILD:=$GCA_TOP/build}"
export PATH="$GCA_BUILD:$GCA_TOP/scripts:$PATH"
TEST_FAILS=0

# ok DESCRIPTION COMMAND...: runs the command; passes on exit 0.
check() {
	local what=$1; shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok - $what"
	else
		echo "not ok - $what"
		echo "$out" | tail -20 | sed 's/^/#   /'
		TEST_FAILS=$((TEST_FAILS + 1))
	fi
}
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; [ $# -gt 1 ] && echo "#   $2"; TEST_FAILS=$((TEST_FAILS + 1)); }
# expect_eq WHAT GOT WANT
expect_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi; }
# not_run SUITE REASON: say so clearly and stop the suite.
not_run() { echo "$1: not run: $2"; exit 0; }
# A fresh temp folder removed at exit (kept when GCA_KEEP=1).
test_tmpdir() {
	TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gca-test.XXXXXX")
	chmod 0755 "$TEST_TMP"
	trap 'test_cleanup' EXIT
}
TEST_CLEANUPS=()
on_exit() { TEST_CLEANUPS+=("$*"); }
test_cleanup() {
	local i
	# a subshell or a child bash forked but not yet exec'd inherits the EXIT trap: only the
	# suite's own shell cleans up (else a signal there removes TEST_TMP under the suite)
	[ "$BASHPID" = "$$" ] || return 0
	for ((i = ${#TEST_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${TEST_CLEANUPS[$i]}" >/dev/null 2>&1; done
	[ "${GCA_KEEP:-}" = 1 ] || rm -rf "${TEST_TMP:-/nonexistent}"
}
# wait_for SECONDS COMMAND...: poll until the command succeeds; bounded.
wait_for() {
	local limit=$1; shift
	local end=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
	until "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
		sleep 0.1
	done
}
# site_procs DIR: the processes whose command line names DIR (none once `gca-site down DIR` is done;
# `gca-site status` says what it started, this also finds what it lost track of).
site_procs() { pgrep -af -- "$1" || true; }
done_testing() { [ "$TEST_FAILS" -eq 0 ]; }
# The entries a CTS's outbox holds (cts/outbox.c): its log's "+ name ..." lines without a later
# "- name", and files of the older layout (a name each) beside the log.
outbox_held() {
	{ awk '$1=="+"{p[$2]=1} $1=="-"{delete p[$2]} END{for (k in p) print k}' "$1/log" 2>/dev/null
	  find "$1" -mindepth 1 -maxdepth 1 ! -name log -printf '%f\n' 2>/dev/null; } | sort -u
}
