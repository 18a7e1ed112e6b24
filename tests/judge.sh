# Sourced by tests/run, and by its self-test tests/integration/runner.sh: how one suite's run is
# judged. Kept apart from the runner's choice of suites so that both can be tested and changed alone.
#
# judge_log NAME KIND LOG RC LIMIT
#   KIND is "sh" (a shell suite: lines "ok - ..." / "not ok - ...") or "cmocka" (its summary lines).
#   Sets judge_pass, judge_fail, judge_skip (parts not run) and prints for the runner's output what
#   was not run and why a suite failed without a failed check. The rules:
#   - every line "<suite>: not run: <reason>" is a part not run; so is every test a cmocka program
#     skipped (skip() prints "[  SKIPPED ] N test(s)" and passes otherwise: a skipped test is never
#     counted as passed); under CI=true each part not run is a failure;
#   - a timeout (RC 124 or 137) is a failure; so is a non-zero RC with no failed check;
#   - a suite that exits 0 with no check passed or failed and nothing said not run is a failure
#     (an empty log, a shell suite that stopped before its first check, a cmocka program with no test).
#
# judge_leftovers NAME TOKEN
#   tests/run starts each suite with GCA_TEST_RUN=TOKEN in its environment; every process the
#   suite starts inherits it, daemons that detach with setsid() and jobs restored by CRIU (their
#   environment is part of the image) included, and no other process has it. Those still alive once
#   the suite is over are named, stopped (SIGTERM, then SIGKILL) so the next suite starts clean, and
#   counted: prints them and returns 1 if there were any. A process started with an emptied
#   environment (env -i, systemd-run) escapes the check; no suite starts one that outlives a command.

judge_pass=0 judge_fail=0 judge_skip=0

# judge_cmocka_count LOG WORD: the N of cmocka's last "[  WORD  ] N test(s)" line, 0 if none.
# cmocka 1.1.7 (Debian 13) names the group there: "[  SKIPPED ] tests: N test(s), listed below:".
judge_cmocka_count() {
	local n
	n=$(grep -oE "^\[ *$2 *\] ([^ ]+: )?[0-9]+ test" "$1" | grep -oE '[0-9]+ test' | grep -oE '[0-9]+' | tail -1)
	echo "${n:-0}"
}

judge_log() {
	local name=$1 kind=$2 log=$3 rc=$4 limit=$5
	local notrun skipped=0 names nlines said=0
	if [ "$kind" = sh ]; then
		judge_pass=$(grep -cE '^ok( |$)' "$log")
		judge_fail=$(grep -cE '^not ok( |$)' "$log")
	else
		judge_pass=$(judge_cmocka_count "$log" PASSED)
		judge_fail=$(judge_cmocka_count "$log" FAILED)
		skipped=$(judge_cmocka_count "$log" SKIPPED)
	fi
	# each part not run once, in the order the suite said it
	notrun=$(grep -E '^[^ ]+: not run: ' "$log" | awk '!seen[$0]++')
	nlines=0
	[ -n "$notrun" ] && nlines=$(printf '%s\n' "$notrun" | wc -l)
	if [ "$skipped" -gt 0 ]; then
		# cmocka lists each skipped test as "[  SKIPPED ] name", during the run and again at the end
		names=$(grep -E '^\[  SKIPPED \] ' "$log" | grep -vE '^\[  SKIPPED \] ([^ ]+: )?[0-9]+ test' |
		    sed 's/^\[  SKIPPED \] //' | awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g')
		notrun=$(printf '%s%s%s: not run: %d cmocka test(s) skipped: %s' "$notrun" \
		    "${notrun:+$'\n'}" "$name" "$skipped" "${names:-?}")
	fi
	# a test that says "not run" and then calls skip() is one part, not two
	judge_skip=$nlines
	[ "$skipped" -gt "$judge_skip" ] && judge_skip=$skipped
	if [ -n "$notrun" ]; then
		said=1
		printf '%s\n' "$notrun"
		if [ "${CI:-}" = true ]; then
			echo "  (CI=true: a suite that does not run is a failure)"
			judge_fail=$((judge_fail + judge_skip)) judge_skip=0
		fi
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "  $name: timed out after ${limit}s"
		judge_fail=$((judge_fail + 1))
	elif [ "$rc" -ne 0 ] && [ "$judge_fail" -eq 0 ]; then
		echo "  $name: exit status $rc with no failed check"
		judge_fail=1
	elif [ "$rc" -eq 0 ] && [ $((judge_pass + judge_fail)) -eq 0 ] && [ $said = 0 ]; then
		echo "  $name: no check ran, and it did not say \"$name: not run: <reason>\""
		judge_fail=1
	fi
}

# judge_procs TOKEN: the pids of the live processes whose environment holds GCA_TEST_RUN=TOKEN.
judge_procs() {
	grep -lsFxz -- "GCA_TEST_RUN=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}

# judge_wait_gone SECONDS TOKEN: polls (every 0.2 s) until no process holds TOKEN; 1 if some still do.
judge_wait_gone() {
	local i
	for ((i = 0; i < $1 * 5; i++)); do
		[ -z "$(judge_procs "$2")" ] && return 0
		sleep 0.2
	done
	[ -z "$(judge_procs "$2")" ]
}

judge_leftovers() {
	local name=$1 token=$2 pids p n=0 cmd
	# a process the suite stopped may still be on its way out: a few seconds' grace
	judge_wait_gone "${GCA_LEFTOVER_GRACE:-3}" "$token" && return 0
	pids=$(judge_procs "$token")
	for p in $pids; do
		cmd=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-160)
		[ -n "$cmd" ] || cmd=$(cat "/proc/$p/comm" 2>/dev/null)
		[ -n "$cmd" ] || continue	# gone meanwhile
		echo "  $name: left running: pid $p: $cmd"
		n=$((n + 1))
	done
	# stop them (re-read the set each time: a pid is only ever signalled while it holds TOKEN)
	# (SIGCONT too: a test may have left one stopped, slapd under SIGSTOP say)
	# shellcheck disable=SC2046
	kill -TERM $(judge_procs "$token") 2>/dev/null
	# shellcheck disable=SC2046
	kill -CONT $(judge_procs "$token") 2>/dev/null
	if ! judge_wait_gone 3 "$token"; then
		# shellcheck disable=SC2046
		kill -KILL $(judge_procs "$token") 2>/dev/null
		judge_wait_gone 2 "$token" || echo "  $name: still running after SIGKILL: $(judge_procs "$token" | paste -sd' ')"
	fi
	[ $n -gt 0 ] || return 0
	echo "  $name: stopped $n process(es) it left running (a suite must stop what it starts)"
	return 1
}
