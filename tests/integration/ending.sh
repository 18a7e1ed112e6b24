# How a job ends (docs/ARCHITECTURE.md, "Jobs end"): gca-exec stays the job's parent for every core
# service, exits with the job's status (128+N for signal N) and tells the CTS, which writes it on the
# job entry (gcaExitStatus) when it unbinds; gca-recover does the same; gca-ctl jobs shows it.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS: ldaps:// with the site CA (docs/DEPLOYMENT.md, "TLS to the directory")
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
counter=$GCA_BUILD/examples/counter
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
lds() { ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" -b "$GCA_BASE_DN" "$@"; }
# entry GID: the job entry's state and exit status, "finished 3"
entry() { lds "(&(objectClass=gcaJob)(gcaGID=$1))" gcaJobState gcaExitStatus |
	awk '$1=="gcaJobState:"{s=$2} $1=="gcaExitStatus:"{e=$2} END{print s, e}'; }
entry_is() { [ "$(entry "$1")" = "$2" ]; }
# ctl_exit GID: the EXIT column of gca-ctl jobs for that GID
ctl_exit() { gca-ctl jobs | awk -v g="$1" 'NR==1{for(i=1;i<=NF;i++) if($i=="EXIT") c=i} $1==g{print $c}'; }

# -- gca-exec stays the job's parent; the CTS binds the child --
log=$TEST_TMP/c.log
gca-exec --gid end-run -- "$counter" --log "$log" --tick 20 &
wrapper=$!
on_exit "kill -9 $wrapper"
check "the counter runs under gca-exec" wait_for 10 grep -q "counter 3" "$log"
child=$(pgrep -P "$wrapper")
[ -n "$child" ] && [ "$(cat "/proc/$child/comm")" = counter ] && pass "the job is gca-exec's child (pid $child)" ||
	fail "the job is gca-exec's child" "$(ps -o pid,ppid,comm --ppid "$wrapper")"
out=$(lds "(&(objectClass=gcaJob)(gcaGID=end-run))" gcaLocalId)
grep -q "^gcaLocalId: $child:" <<<"$out" && pass "the binding names the job's pid, not the wrapper's" ||
	fail "the binding names the job's pid" "$out"
out=$(gca-ctl checkpoint end-run 2>&1)
case "$out" in *"seq 1 at cts-app"*) pass "the job's bound channel works (GCA_APP_FD): checkpoint seq 1" ;;
*) fail "a checkpoint through the job's channel" "$out" ;; esac
kill -TERM "$wrapper"; wait "$wrapper"; rc=$?
expect_eq "SIGTERM to gca-exec reaches the job; the counter exits 0 on it" "$rc" 0
check "the job entry: finished, exit status 0" wait_for 10 entry_is end-run "finished 0"

# -- a job that exits 3 --
gca-exec --gid end-3 -- sh -c 'sleep 0.3; exit 3'; rc=$?
expect_eq "gca-exec exits with the job's status 3" "$rc" 3
check "the job entry: finished, gcaExitStatus 3" wait_for 10 entry_is end-3 "finished 3"
expect_eq "gca-ctl jobs shows EXIT 3" "$(ctl_exit end-3)" 3
json=$(gca-ctl --json jobs | python3 -c 'import json,sys; print([e.get("gcaExitStatus") for e in json.load(sys.stdin) if e.get("gcaGID")==["end-3"] or e.get("gcaGID")=="end-3"])')
case "$json" in *3*) pass "gca-ctl --json jobs carries gcaExitStatus" ;; *) fail "gca-ctl --json jobs carries gcaExitStatus" "$json" ;; esac

# -- a job killed by a signal: 128+N, as gca-recover reports it --
gca-exec --gid end-sig -- sh -c 'sleep 0.3; kill -KILL $$'; rc=$?
expect_eq "gca-exec exits 137 for a job killed by SIGKILL" "$rc" 137
check "the job entry: finished, gcaExitStatus 137" wait_for 10 entry_is end-sig "finished 137"

# -- SIGKILL to gca-exec itself: the job goes with it, the entry says finished (no status) --
log2=$TEST_TMP/c2.log
gca-exec --gid end-kill -- "$counter" --log "$log2" --tick 20 &
w2=$!
on_exit "kill -9 $w2"
check "a second counter runs" wait_for 10 grep -q "counter 3" "$log2"
c2=$(pgrep -P "$w2")
kill -9 "$w2"; wait "$w2" 2>/dev/null
check "the job dies with its wrapper (PR_SET_PDEATHSIG)" wait_for 5 sh -c "! kill -0 $c2 2>/dev/null"
check "the job entry says finished without a status" wait_for 10 entry_is end-kill "finished "

# -- gca-recover: the recovered job's status reaches the entry too --
gca-recover --gid end-run --checkpoint latest -- sh -c 'exit 5'; rc=$?
expect_eq "gca-recover exits with the recovered job's status 5" "$rc" 5
check "the job entry: finished, gcaExitStatus 5" wait_for 10 entry_is end-run "finished 5"

done_testing
