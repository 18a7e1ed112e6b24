# gca-ctl against a real site (gca-site: slapd, PKI, gca-gcs, gca-cts) and a real job: every
# command in both output modes, help and usage errors, where settings come from, which identity.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
export HOME=$TEST_TMP/nohome	# no ctl.conf but the ones made below
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1	# the CTSes beat every second (a retired one is seen at once)
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
# The admin identity, as an operator takes it: admin.env sourced on purpose (in a subshell here,
# so the rest of the suite stays a broker).
as_admin() { ( . "$site/admin.env"; "$@" ); }
# json_ok 'python expression over d' COMMAND...: the command's stdout is JSON and the expression holds
json_ok() { local e=$1; shift; "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); assert $e, d"; }

# -- help: every command the listing names --
names=$(gca-ctl --help | awk '/^  [a-z]/ { n = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) n = n (n ? " " : "") $i; print n }')
expect_eq "gca-ctl --help lists the 12 commands" "$(wc -l <<<"$names")" 12
while read -r name; do
	# shellcheck disable=SC2086
	for how in "help $name" "$name --help"; do
		out=$(gca-ctl $how 2>&1); rc=$?
		expect_eq "gca-ctl $how: exit 0" "$rc" 0
		case "$(head -1 <<<"$out")" in "usage: gca-ctl $name"*) pass "gca-ctl $how: prints its usage line" ;;
		*) fail "gca-ctl $how: prints its usage line" "$(head -1 <<<"$out")" ;; esac
	done
	out=$(gca-ctl help $name)
	if [ "$(wc -l <<<"$out")" -ge 5 ] && grep -q '^example:' <<<"$out"; then pass "gca-ctl help $name says more (options, an example)"
	else fail "gca-ctl help $name says more (options, an example)" "$out"; fi
	if grep -q ' $' <<<"$out"; then fail "gca-ctl help $name: no trailing space" "$(grep -n ' $' <<<"$out" | cat -A | head -2)"
	else pass "gca-ctl help $name: no trailing space"; fi
done <<<"$names"
out=$(gca-ctl --help)
for opt in --gcs --ca --cert --key --admin --broker --json --timeout; do
	grep -q -- "^  $opt\b" <<<"$out" || { fail "gca-ctl --help explains the global option $opt" "$out"; continue; }
	pass "gca-ctl --help explains the global option $opt"
done
out=$(gca-ctl help class); rc=$?
case "$rc $out" in "0 usage: gca-ctl class add"*) pass "help class: the family's commands" ;; *) fail "help class: the family's commands" "$rc $out" ;; esac
out=$(gca-ctl help nosuch 2>&1); expect_eq "help of an unknown command: exit 2" "$?" 2

# -- usage errors: exit 2, a usage line, and what was wrong --
usage_err() {	# usage_err "ARGS" TEXT: exit 2, a usage line, and TEXT in the message
	local out rc
	# shellcheck disable=SC2086
	out=$(gca-ctl $1 2>&1); rc=$?
	expect_eq "gca-ctl $1: exit 2" "$rc" 2
	case "$out" in *usage:*) pass "gca-ctl $1: prints a usage line" ;; *) fail "gca-ctl $1: prints a usage line" "$out" ;; esac
	case "$out" in *"$2"*) pass "gca-ctl $1: says \"$2\"" ;; *) fail "gca-ctl $1: says \"$2\"" "$out" ;; esac
}
usage_err "" "commands:"
usage_err "checkpoint" "which job?"
usage_err "nosuchcommand" 'no command "nosuchcommand"'
usage_err "--bogus status" "--bogus: unknown option"
usage_err "class add" "which class?"
usage_err "class" "which one?"
usage_err "cts remove" "which CTS?"
usage_err "checkpoints" "which job?"
usage_err "cts --bogus" "unknown option --bogus"
usage_err "cts --class" "--class needs a value"
usage_err "checkpoints g --limit 0" '--limit: bad value "0"'
usage_err "status extra" 'unexpected argument "extra"'
usage_err "jobs --gcs 127.0.0.1:1" "--gcs is a global option: put it before the command"
usage_err "--timeout x status" 'bad value "x"'
usage_err "--admin --broker status" "not both"
usage_err "status --admin --broker" "not both"
usage_err "checkpoints g --limit x" 'bad value "x"'
usage_err "gc job-7 extra" 'unexpected argument "extra"'

# -- status, services, classes --
check "status" sh -c "gca-ctl status | grep -q 'is up'"
check "status --json" json_ok 'd["up"] and d["gcs"] == "'"$GCA_GCS_ENDPOINT"'"' gca-ctl --json status
check "a global option without a value may follow the command (status --json)" json_ok 'd["up"]' gca-ctl status --json
check "services shows the GCS and its endpoint" sh -c "gca-ctl services | grep -q 'gcs-1 .*$GCA_GCS_ENDPOINT'"
check "services --json" json_ok 'd[0]["gcaEndpoint"] == ["'"$GCA_GCS_ENDPOINT"'"]' gca-ctl --json services
check "classes shows basic" sh -c "gca-ctl classes | grep -q '^basic '"
check "classes --json" json_ok 'any(e["cn"] == ["basic"] for e in d)' gca-ctl --json classes
# basic's description is longer than a column may be: cut with "...", the next column stays aligned
gca-ctl classes > "$TEST_TMP/classes"
check "a long cell is cut with ..." grep -q '^basic .*\.\.\.  ' "$TEST_TMP/classes"
check "the columns after it stay aligned" python3 - "$TEST_TMP/classes" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
at = lines[0].index("PROPERTIES")
for l in lines[1:]:
    assert l[at - 2:at] == "  " and l[at] != " ", (at, l)
PY
check "no trailing space in a table" sh -c "! grep -q ' \$' '$TEST_TMP/classes'"

# -- class add: admin only; the admin identity when admin.env is sourced, --broker to keep the broker's --
out=$(gca-ctl class add mpi ranks=many 2>&1); rc=$?
expect_eq "class add as a broker fails" "$rc" 1
case "$out" in *forbidden*admin.env*) pass "and says to source admin.env" ;; *) fail "and says to source admin.env" "$out" ;; esac
check "class add with admin.env sourced (no flag)" as_admin gca-ctl class add mpi --description "MPI jobs" ranks=many network=yes
check "the new class is listed with its properties" sh -c "gca-ctl classes | grep -q '^mpi .*MPI jobs.*ranks=many'"
check "class add --json" json_ok 'd["added"] and d["class"] == "smp"' as_admin gca-ctl --json class add smp threads=many
check "class add --admin" json_ok 'd["added"]' env GCA_ADMIN_CERT_FILE= gca-ctl --admin --json --cert "$site/pki/admin-admin.crt" --key "$site/pki/admin-admin.key" class add smp2 a=b
out=$(as_admin gca-ctl --broker class add numa nodes=2 2>&1); rc=$?
case "$rc $out" in "1 "*forbidden*) pass "--broker keeps the broker's identity with admin.env sourced" ;; *) fail "--broker keeps the broker's identity" "$rc $out" ;; esac
out=$(gca-ctl --admin status 2>&1); rc=$?
case "$rc $out" in "1 "*"no admin certificate"*admin.env*) pass "--admin without admin.env: no admin certificate, source admin.env" ;; *) fail "--admin without an admin certificate" "$rc $out" ;; esac
# class names: compared by the directory ignoring case and spaces at either end, so "MPI" is
# refused (not folded into mpi), a class added again says "replaced", and names with spaces at an
# end, or control characters, are refused by gca-ctl as by the GCS
out=$(as_admin gca-ctl class add MPI ranks=few 2>&1); rc=$?
case "$rc $out" in "1 "*'class "mpi" exists'*exists*) pass "class add MPI when mpi exists: refused (exists)" ;; *) fail "class add MPI when mpi exists: refused" "$rc $out" ;; esac
check "and mpi keeps its properties" sh -c "gca-ctl classes | grep -q '^mpi .*ranks=many'"
out=$(as_admin gca-ctl class add smp threads=few); expect_eq "class add of an existing class says replaced" "$out" "class smp replaced"
check "class add --json: replaced" json_ok 'd == {"class": "smp", "added": False, "replaced": True}' as_admin gca-ctl --json class add smp threads=some
check "class add --json: added" json_ok 'd == {"class": "smp3", "added": True, "replaced": False}' as_admin gca-ctl --json class add smp3 threads=some
for name in "mpi " " mpi" "$(printf 'a\nb')" "a  b"; do
	out=$(as_admin gca-ctl class add "$name" a=b 2>&1); rc=$?
	case "$rc $out" in "2 "*"is not a valid class name"*) pass "class add \"$name\": exit 2, not a valid class name" ;; *) fail "class add \"$name\": refused" "$rc $out" ;; esac
done
for cmd in checkpoint checkpoints subscribe gc; do
	out=$(gca-ctl $cmd " ctl-job-1" 2>&1); rc=$?
	case "$rc $out" in "2 "*'" ctl-job-1" is not a valid GID: it has a space at its start or end'*) pass "$cmd \" GID\": exit 2, not a valid GID" ;; *) fail "$cmd \" GID\": refused" "$rc $out" ;; esac
done
out=$(as_admin gca-ctl class add bad notkeyvalue 2>&1); rc=$?
case "$rc $out" in *'"notkeyvalue" is not key=value'*) expect_eq "class add with a bad property: exit 2" "$rc" 2 ;; *) fail "class add with a bad property" "$rc $out" ;; esac

# -- cts: fake CTSes in the directory (as a registration would leave them) --
ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null <<LDIF
dn: cn=cts-a,ou=cts,o=gca
objectClass: gcaTranslationService
cn: cts-a
gcaCoreService: criu
gcaClass: basic
gcaProperty: arch=x86_64
gcaStatus: ok
gcaEndpoint: 127.0.0.1:1

dn: cn=cts-b,ou=cts,o=gca
objectClass: gcaTranslationService
cn: cts-b
gcaCoreService: app
gcaClass: mpi
gcaProperty: arch=aarch64
gcaStatus: ok
gcaEndpoint: 127.0.0.1:1

dn: cn=cts-c,ou=cts,o=gca
objectClass: gcaTranslationService
cn: cts-c
gcaCoreService: app
gcaStatus: ok
gcaEndpoint: 127.0.0.1:1
LDIF
check "cts lists them" sh -c "gca-ctl cts | grep -q '^cts-a ' && gca-ctl cts | grep -q '^cts-b '"
got=$(gca-ctl cts --class basic | awk 'NR>1{print $1}' | sort | tr '\n' ' ')
expect_eq "cts --class basic (the site's own CTSes too)" "$got" "cts-a cts-app cts-criu "
got=$(gca-ctl cts --core-service app --status ok | awk 'NR>1{print $1}' | sort | tr '\n' ' ')
expect_eq "cts --core-service app --status ok" "$got" "cts-app cts-b cts-c "
got=$(gca-ctl --json cts --property arch=aarch64 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["cn"][0])')
expect_eq "cts --property, --json" "$got" cts-b
got=$(gca-ctl cts --class 'x*)(cn=*' | awk 'NR>1' | wc -l)
expect_eq "a filter with LDAP special characters matches nothing" "$got" 0
out=$(gca-ctl cts remove cts-b 2>&1); expect_eq "cts remove as a broker fails" "$?" 1
check "cts remove (admin)" sh -c ". '$site/admin.env'; gca-ctl cts remove cts-b | grep -q '^CTS cts-b retired'"
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(cn=cts-b)' gcaStatus | awk '/^gcaStatus:/{print $2}')
expect_eq "the CTS is retired, not deleted" "$got" retired
check "cts remove --json gives its status" json_ok 'd == {"cts": "cts-c", "status": "retired"}' as_admin gca-ctl --json cts remove cts-c
out=$(as_admin gca-ctl cts remove no-such-cts 2>&1); rc=$?
expect_eq "removing an unknown CTS fails" "$rc" 1
case "$out" in *not_found*) pass "and says not found" ;; *) fail "and says not found" "$out" ;; esac

# -- a real job: examples/counter under gca-exec at the site's cts-app --
gid=ctl-job-1
log=$TEST_TMP/counter.log
gca-ctl subscribe "$gid" > "$TEST_TMP/sub.out" 2> "$TEST_TMP/sub.err" & sub=$!
gca-ctl --json subscribe "$gid" > "$TEST_TMP/subj.out" 2> "$TEST_TMP/subj.err" & subj=$!
on_exit "kill $sub $subj"
check "both subscribers listen" wait_for 20 sh -c "grep -q 'listening for events of $gid' '$TEST_TMP/sub.err' && grep -q listening '$TEST_TMP/subj.err'"
gca-exec --gid "$gid" -- "$GCA_BUILD/examples/counter" --log "$log" --tick 50 & job=$!
on_exit "kill -9 $job"
check "the job counts" wait_for 20 grep -q '^counter 3$' "$log"
check "jobs shows it at cts-app" wait_for 10 sh -c "gca-ctl jobs | grep -qE '^$gid +cts-app +running'"
check "jobs --json shows it at cts-app" json_ok 'any(e["gcaGID"] == ["'"$gid"'"] and e["gcaCTSName"] == ["cts-app"] for e in d)' gca-ctl --json jobs
check "jobs --cts cts-app" sh -c "gca-ctl jobs --cts cts-app | grep -q '^$gid '"
out=$(gca-ctl --json checkpoint "$gid" --wait); rc=$?
expect_eq "checkpoint --json --wait: exit 0" "$rc" 0
read -r ck1 seq1 cts1 < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["gid"] == sys.argv[2]; print(d["checkpoint"], d["seq"], d["cts"])' "$out" "$gid")
expect_eq "checkpoint --json: seq and cts" "$seq1 $cts1" "1 cts-app"
case "$ck1" in ????????-????-????-????-????????????) pass "checkpoint --json: an id ($ck1)" ;; *) fail "checkpoint --json: an id" "$out" ;; esac
out=$(gca-ctl checkpoint "$gid")
ck2=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
case "$out" in "checkpoint $ck2 of $gid: seq 2 at cts-app") pass "checkpoint: one line, id, seq, cts" ;; *) fail "checkpoint: one line" "$out" ;; esac
got=$(gca-ctl checkpoints "$gid" | awk 'NR>1{print $1, $2, $4}' | tr '\n' ' ')
expect_eq "checkpoints: newest first, ids and CTS" "$got" "2 $ck2 cts-app 1 $ck1 cts-app "
check "checkpoints --json" json_ok '[e["gcaCheckpointId"][0] for e in d] == ["'"$ck2"'", "'"$ck1"'"]' gca-ctl --json checkpoints "$gid"
check "subscribe (table) shows the checkpoint" wait_for 10 grep -qE "^[0-9.]+Z checkpoint +$gid +cts-app +$ck1 seq 1$" "$TEST_TMP/sub.out"
check "subscribe (table): the binding, without a checkpoint number" grep -qE "^[0-9.]+Z bound +$gid +cts-app$" "$TEST_TMP/sub.out"
check "subscribe --json: one object per line, the checkpoint with its id and seq" wait_for 10 python3 - "$TEST_TMP/subj.out" "$ck2" <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
assert any(e["event"] == "checkpoint" and e["checkpoint"] == sys.argv[2] and e["seq"] == 2 for e in evs), evs
PY
# the fake CTSes above never answer: as the GCS would after cts_timeout, they are down now
for f in cts-a cts-b cts-c; do
	printf 'dn: cn=%s,ou=cts,o=gca\nchangetype: modify\nreplace: gcaStatus\ngcaStatus: down\n\n' $f
done | ldapmodify -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null
check "gc --dry-run (admin): nothing to remove under retention 10, the CTSes that are down named" bash -c ". '$site/admin.env'; out=\$(gca-ctl gc '$gid' --dry-run) && grep -qx 'nothing to remove at the CTSes asked' <<<\"\$out\" && grep -q '^skipped cts-a[: ]' <<<\"\$out\""
check "gc --json" json_ok 'd["dry_run"] is True and d["removed"] == [] and d["errors"] == [] and sorted(s.split(":")[0] for s in d["skipped"]) == ["cts-a", "cts-b", "cts-c"]' as_admin gca-ctl --json gc "$gid" --dry-run
kill -INT $sub; wait $sub; rc=$?
expect_eq "subscribe stops cleanly on Ctrl-C" "$rc" 0
kill -TERM $subj; wait $subj; expect_eq "and on SIGTERM" "$?" 0

# -- an outcome unknown: the CTS stopped under the request, gca-ctl gives up first (io). The
# checkpoint may still be taken, so gca-ctl prints its idempotency key and the command that asks
# again; run once the CTS is back, that command returns the same checkpoint: one record, not two --
cts_pid=$(cat "$site/cts-app.pid")
on_exit "kill -CONT $cts_pid"
kill -STOP "$cts_pid"
out=$(gca-ctl --json --timeout 3 checkpoint "$gid" 2>"$TEST_TMP/unknown.err"); rc=$?
kill -CONT "$cts_pid"
expect_eq "checkpoint with its CTS stopped: exit 1" "$rc" 1
key=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["gid"] == sys.argv[2] and d["outcome"] == "unknown" and d["code"] == "io", d; print(d["idem_key"])' "$out" "$gid")
case "$key" in ctl-????????-????-????-????-????????????) pass "--json gives the idempotency key it made ($key)" ;; *) fail "--json gives the idempotency key" "$out" ;; esac
check "stderr names the key" grep -q "idempotency key $key" "$TEST_TMP/unknown.err"
again=$(awk '$1 == "gca-ctl" && $2 != "gca-ctl:"' "$TEST_TMP/unknown.err")
expect_eq "and the command that asks again" "$again" "  gca-ctl --json --timeout 3 checkpoint $gid --idem-key $key"
# as a broker would: the same command until it answers (each run is safe: the same key)
for i in 1 2 3 4 5; do
	out=$(eval "$again" 2>>"$TEST_TMP/again.err") && break
	sleep 1
done
read -r ck3 seq3 key3 < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["checkpoint"], d["seq"], d["idem_key"])' "$out")
expect_eq "asked again: the checkpoint taken for that key, seq 3" "$seq3 $key3" "3 $key"
out=$(eval "$again" 2>&1)
got=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["checkpoint"], d["seq"])' "$out")
expect_eq "and again: the same checkpoint" "$got" "$ck3 3"
got=$(gca-ctl checkpoints "$gid" | awk 'NR>1{print $1, $2}' | tr '\n' ' ')
expect_eq "one record for the key, not two" "$got" "3 $ck3 2 $ck2 1 $ck1 "

# -- jobs and checkpoints: records as a CTS's checkpoint_log leaves them, paged --
{
	printf 'dn: gcaGID=job-7,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: job-7\ngcaCTSName: cts-a\ngcaJobState: running\ngcaOwner: alice\ngcaLastSequence: 3\n\n'
	for s in 1 2 3; do
		printf 'dn: gcaCheckpointId=0190a1b2-0000-7000-8000-00000000000%d,gcaGID=job-7,ou=jobs,o=gca\nobjectClass: gcaCheckpoint\ngcaCheckpointId: 0190a1b2-0000-7000-8000-00000000000%d\ngcaGID: job-7\ngcaSequenceNumber: %d\ngcaCTSName: cts-a\ngcaCheckpointKind: external\ngcaCheckpointTime: 2026112510000%d.000Z\n\n' $s $s $s $s
	done
} | ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null
check "jobs shows job-7 at cts-a" sh -c "gca-ctl jobs | grep -q '^job-7 *cts-a *running *alice'"
got=$(gca-ctl jobs --limit 1 2>"$TEST_TMP/more" | awk 'NR>1' | wc -l)
expect_eq "jobs --limit 1: one job (two are bound)" "$got" 1
cursor=$(sed -n 's/^more: run it again with --cursor //p' "$TEST_TMP/more")
[ -n "$cursor" ] && pass "and stderr gives a cursor: $cursor" || fail "jobs --limit 1 gives a cursor" "$(cat "$TEST_TMP/more")"
got2=$(gca-ctl jobs --limit 1 --cursor "$cursor" 2>"$TEST_TMP/more" | awk 'NR>1{print $1}')
got1=$(gca-ctl jobs --limit 1 2>/dev/null | awk 'NR>1{print $1}')
[ -n "$got2" ] && [ "$got2" != "$got1" ] && pass "the cursor gives the next job ($got1, then $got2)" || fail "the next page of jobs" "$got1 / $got2"
out=$(gca-ctl jobs --cursor before=3 2>&1); expect_eq "jobs with a cursor of checkpoints: exit 1" "$?" 1
case "$out" in *"is not one this GCS gives (after=K"*) pass "and says what a cursor of jobs is" ;; *) fail "a bad jobs cursor says why" "$out" ;; esac

# -- more jobs than the directory's size limit (500 for a broker's ldapsearch, gca-site), paged --
n_before=$(gca-ctl --json jobs --limit 99999 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
for i in $(seq -w 1 1100); do
	printf 'dn: gcaGID=bulk %s,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: bulk %s\ngcaCTSName: cts-bulk\ngcaJobState: finished\n\n' "$i" "$i"
done | ldapadd -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" >/dev/null
ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(objectClass=gcaJob)" gcaGID >/dev/null 2>&1
expect_eq "a broker's plain ldapsearch of ou=jobs hits the size limit (4)" "$?" 4
: > "$TEST_TMP/all"; cursor=; pages=0
while [ $pages -lt 10 ]; do
	pages=$((pages + 1))
	gca-ctl --json jobs ${cursor:+--cursor "$cursor"} 2>"$TEST_TMP/more" |
		python3 -c 'import json,sys; [print(e["gcaGID"][0]) for e in json.load(sys.stdin)]' >> "$TEST_TMP/all"
	cursor=$(sed -n 's/^more: run it again with --cursor //p' "$TEST_TMP/more")
	[ -n "$cursor" ] || break
done
expect_eq "gca-ctl jobs pages through all $((n_before + 1100)) jobs in 500s: 3 pages" "$pages $(wc -l < "$TEST_TMP/all")" "3 $((n_before + 1100))"
expect_eq "each job once" "$(sort -u "$TEST_TMP/all" | wc -l)" "$((n_before + 1100))"
sort -c "$TEST_TMP/all" 2>/dev/null && pass "in the order of their GIDs" || fail "jobs in GID order" "$(head -3 "$TEST_TMP/all")"
grep -qx "bulk 0001" "$TEST_TMP/all" && grep -qx "bulk 1100" "$TEST_TMP/all" && pass "a GID with a space goes through the cursor (percent-encoded)" || fail "bulk GIDs with a space" "$(grep -c bulk "$TEST_TMP/all")"
got=$(gca-ctl jobs --cts cts-bulk --limit 1000 2>"$TEST_TMP/more" | awk 'NR>1' | wc -l)
cursor=$(sed -n 's/^more: run it again with --cursor //p' "$TEST_TMP/more")
expect_eq "a filtered list pages too: 1000, then the cursor" "$got $cursor" "1000 after=bulk%201000"
got=$(gca-ctl jobs --cts cts-bulk --limit 1000 --cursor "$cursor" 2>/dev/null | awk 'NR>1{print $1, $2}' | tr '\n' ' ')
case "$got" in "bulk 1001 "*"bulk 1100 ") pass "and the next page holds the last 100" ;; *) fail "the last page of cts-bulk" "$got" ;; esac
seq -w 1 1100 | sed 's/^/gcaGID=bulk /; s/$/,ou=jobs,o=gca/' | ldapdelete -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" >/dev/null

# -- cts pages the same way --
gca-ctl cts 2>/dev/null | awk 'NR>1{print $1}' | sort > "$TEST_TMP/cts.all"
: > "$TEST_TMP/cts.paged"; cursor=; pages=0
while [ $pages -lt 20 ]; do
	pages=$((pages + 1))
	gca-ctl cts --limit 1 ${cursor:+--cursor "$cursor"} 2>"$TEST_TMP/more" | awk 'NR>1{print $1}' >> "$TEST_TMP/cts.paged"
	cursor=$(sed -n 's/^more: run it again with --cursor //p' "$TEST_TMP/more")
	[ -n "$cursor" ] || break
done
expect_eq "gca-ctl cts --limit 1 pages through every CTS, one a page" "$(cat "$TEST_TMP/cts.paged" | tr '\n' ' ')" "$(tr '\n' ' ' < "$TEST_TMP/cts.all")"
[ "$(wc -l < "$TEST_TMP/cts.all")" -ge 2 ] && pass "($(wc -l < "$TEST_TMP/cts.all") CTSes, $pages pages)" || fail "at least two CTSes to page" "$(cat "$TEST_TMP/cts.all")"
gca-ctl jobs 2>"$TEST_TMP/more" >/dev/null
expect_eq "a whole list says nothing more" "$(cat "$TEST_TMP/more")" ""
got=$(gca-ctl --json checkpoints job-7 --limit 1 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["gcaSequenceNumber"][0])')
expect_eq "checkpoints --limit 1 --json" "$got" "1 3"
got=$(gca-ctl checkpoints job-7 --limit 2 2>"$TEST_TMP/more" | awk 'NR>1{print $1}' | tr '\n' ' ')
expect_eq "checkpoints --limit 2: the first page" "$got" "3 2 "
cursor=$(sed -n 's/^more: run it again with --cursor //p' "$TEST_TMP/more")
expect_eq "and a cursor for the next one" "$cursor" "before=2"
got=$(gca-ctl checkpoints job-7 --limit 2 --cursor "$cursor" 2>"$TEST_TMP/more" | awk 'NR>1{print $1}' | tr '\n' ' ')
expect_eq "the next page" "$got" "1 "
expect_eq "and no cursor after the last" "$(cat "$TEST_TMP/more")" ""
out=$(gca-ctl checkpoints job-7 --cursor bogus 2>&1); expect_eq "a bad cursor: exit 1" "$?" 1
out=$(gca-ctl checkpoints no-such-job 2>&1); expect_eq "checkpoints of an unknown GID fails" "$?" 1

# -- checkpoint: each failure is one clear line, exit 1 --
out=$(gca-ctl checkpoint no-such-job 2>&1); rc=$?
expect_eq "checkpoint of an unknown GID: exit 1" "$rc" 1
case "$out" in *"unknown GID no-such-job"*) pass "and names the GID" ;; *) fail "and names the GID" "$out" ;; esac
out=$(gca-ctl checkpoint job-7 2>&1); rc=$?
expect_eq "checkpoint of a job whose CTS is unreachable: exit 1" "$rc" 1
case "$out" in *cts_down*) pass "and says the CTS is down" ;; *) fail "and says the CTS is down" "$out" ;; esac
# cts_down may come after the request reached the CTS (whose outbox may record it later): the key
# and the command that asks again follow the error's line
expect_eq "and says it in one line, then the key and how to ask again" "$(wc -l <<<"$out")" 3
case "$(sed -n 3p <<<"$out")" in "  gca-ctl checkpoint job-7 --idem-key ctl-"*) pass "  the command: gca-ctl checkpoint job-7 --idem-key KEY" ;;
*) fail "  the command: gca-ctl checkpoint job-7 --idem-key KEY" "$out" ;; esac

# -- where settings come from: flags, then GCA_* variables, then ~/.config/gca/ctl.conf --
home=$TEST_TMP/home
mkdir -p "$home/.config/gca"
conf=$home/.config/gca/ctl.conf
noenv=(env -u GCA_GCS_ENDPOINT -u GCA_CA_FILE -u GCA_CERT_FILE -u GCA_KEY_FILE HOME="$home")
printf 'gcs %s\nca %s\ncert %s\nkey %s\n' "$GCA_GCS_ENDPOINT" "$GCA_CA_FILE" "$GCA_CERT_FILE" "$GCA_KEY_FILE" > "$conf"
check "ctl.conf alone is enough" "${noenv[@]}" gca-ctl status
out=$(HOME="$home" GCA_GCS_ENDPOINT=127.0.0.1:1 gca-ctl status 2>&1); rc=$?
case "$rc $out" in "1 "*"127.0.0.1:1, from GCA_GCS_ENDPOINT"*) pass "GCA_GCS_ENDPOINT wins over ctl.conf (a dead one fails, named)" ;; *) fail "GCA_GCS_ENDPOINT wins over ctl.conf" "$rc $out" ;; esac
case "$out" in *"is it up?"*) pass "and the error says what to check" ;; *) fail "and the error says what to check" "$out" ;; esac
sed -i "s|^gcs .*|gcs 127.0.0.1:1|" "$conf"
check "a good GCA_GCS_ENDPOINT wins over ctl.conf's dead one" env HOME="$home" gca-ctl status
out=$("${noenv[@]}" gca-ctl status 2>&1); rc=$?
case "$rc $out" in "1 "*"from ~/.config/gca/ctl.conf"*) pass "ctl.conf's endpoint is used when nothing else names one" ;; *) fail "ctl.conf's endpoint is used" "$rc $out" ;; esac
out=$(HOME="$home" gca-ctl --gcs 127.0.0.1:1 status 2>&1); rc=$?
case "$rc $out" in "1 "*"from --gcs"*) pass "--gcs wins over the environment" ;; *) fail "--gcs wins over the environment" "$rc $out" ;; esac
# certificates: ctl.conf names the admin's as cert/key, the environment the broker's
printf 'gcs %s\nca %s\ncert %s\nkey %s\n' "$GCA_GCS_ENDPOINT" "$GCA_CA_FILE" "$site/pki/admin-admin.crt" "$site/pki/admin-admin.key" > "$conf"
out=$(HOME="$home" gca-ctl class add envwins x=y 2>&1); rc=$?
case "$rc $out" in "1 "*forbidden*) pass "GCA_CERT_FILE wins over ctl.conf's cert" ;; *) fail "GCA_CERT_FILE wins over ctl.conf's cert" "$rc $out" ;; esac
check "ctl.conf's cert is used when the environment names none" "${noenv[@]}" gca-ctl class add confcert x=y
check "--cert/--key win over the environment" gca-ctl --cert "$site/pki/admin-admin.crt" --key "$site/pki/admin-admin.key" class add flagcert x=y
out=$(gca-ctl --cert "$TEST_TMP/none.crt" status 2>&1); rc=$?
case "$rc $out" in "1 gca-ctl: cannot read the certificate $TEST_TMP/none.crt (from --cert)"*) pass "a missing certificate is named, with where it came from" ;; *) fail "a missing certificate is named" "$rc $out" ;; esac
printf 'ca %s\nadmin_cert %s\nadmin_key %s\n' "$GCA_CA_FILE" "$site/pki/admin-admin.crt" "$site/pki/admin-admin.key" > "$conf"
check "ctl.conf's admin_cert with --admin" env HOME="$home" gca-ctl --admin class add confadmin x=y
# a ctl.conf that does not parse stops gca-ctl: exit 2, naming the file and the line
printf 'gcs %s\ngsc 127.0.0.1:1\n' "$GCA_GCS_ENDPOINT" > "$conf"
out=$(HOME="$home" gca-ctl status 2>&1); rc=$?
expect_eq "a ctl.conf with an unknown setting: exit 2" "$rc" 2
case "$out" in *"$conf, line 2: unknown setting \"gsc\""*) pass "and names the file, the line and the setting" ;; *) fail "and names the file, the line and the setting" "$out" ;; esac
printf 'gcs\n' > "$conf"
out=$(HOME="$home" gca-ctl status 2>&1); expect_eq "a ctl.conf line without a value: exit 2" "$?" 2
rm "$conf"; mkdir "$conf"
out=$(HOME="$home" gca-ctl status 2>&1); rc=$?
case "$rc $out" in "2 gca-ctl: cannot read $conf"*) pass "an unreadable ctl.conf: exit 2, named" ;; *) fail "an unreadable ctl.conf: exit 2, named" "$rc $out" ;; esac
out=$(env -u GCA_GCS_ENDPOINT HOME=/nonexistent gca-ctl status 2>&1); rc=$?
expect_eq "no GCS anywhere: exit 1" "$rc" 1
case "$out" in *"site.env"*) pass "and says what to do" ;; *) fail "and says what to do" "$out" ;; esac
# a real CTS retired by the admin: it says so once in its log and stops asking at every beat
check "cts remove of the site's running cts-criu (admin)" as_admin gca-ctl cts remove cts-criu
sleep 4
check "cts-criu says once that the GCS refuses it" test "$(grep -c 'refuses this CTS' "$site/log/cts-criu.log")" = 1
check "  and does not try again at every heartbeat" test "$(grep -c 'cannot register' "$site/log/cts-criu.log")" = 0
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(cn=cts-criu)' gcaStatus | awk '$1=="gcaStatus:"{print $2}')
expect_eq "  and stays retired" "$got" retired
done_testing
