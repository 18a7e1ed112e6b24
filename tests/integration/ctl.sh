# gca-ctl against a real site (gca-site: slapd, PKI, gca-gcs), every command in both output modes.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")

# -- usage --
for args in "" "checkpoint" "nosuchcommand" "--bogus status" "class add" "cts remove" "checkpoints"; do
	out=$(gca-ctl $args 2>&1); rc=$?
	expect_eq "gca-ctl $args: exit 2" "$rc" 2
	case "$out" in *usage:*) pass "gca-ctl $args: prints a usage line" ;; *) fail "gca-ctl $args: prints a usage line" "$out" ;; esac
done
check "gca-ctl help checkpoint" sh -c "gca-ctl help checkpoint | grep -q 'usage: gca-ctl checkpoint GID'"
check "gca-ctl jobs --help" sh -c "gca-ctl jobs --help | grep -q 'usage: gca-ctl jobs'"

# -- status, services, classes --
check "status" sh -c "gca-ctl status | grep -q 'is up'"
check "status --json" sh -c "gca-ctl --json status | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"up\"]'"
check "services shows the GCS and its endpoint" sh -c "gca-ctl services | grep -q 'gcs-1 .*$GCA_GCS_ENDPOINT'"
check "services --json" sh -c "gca-ctl --json services | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"gcaEndpoint\"]==[\"$GCA_GCS_ENDPOINT\"]'"
check "classes shows basic" sh -c "gca-ctl classes | grep -q '^basic '"
check "classes --json" sh -c "gca-ctl --json classes | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(e[\"cn\"]==[\"basic\"] for e in d)'"

# -- class add: admin only --
out=$(gca-ctl class add mpi ranks=many 2>&1); rc=$?
expect_eq "class add as a broker fails" "$rc" 1
case "$out" in *forbidden*--admin*) pass "and says to use --admin" ;; *) fail "and says to use --admin" "$out" ;; esac
. "$site/admin.env"
check "class add --admin" gca-ctl --admin class add mpi --description "MPI jobs" ranks=many network=yes
check "the new class is listed with its properties" sh -c "gca-ctl classes | grep -q '^mpi .*MPI jobs.*ranks=many'"
check "class add --json" sh -c "gca-ctl --admin --json class add smp threads=many | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"added\"]'"
out=$(gca-ctl --admin class add bad notkeyvalue 2>&1); expect_eq "class add with a bad property: exit 2" "$?" 2

# -- cts: two CTSes in the directory (as a CTS's registration would leave them) --
ldapadd -x -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null <<LDIF
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
LDIF
check "cts lists both" sh -c "gca-ctl cts | grep -q '^cts-a ' && gca-ctl cts | grep -q '^cts-b '"
# the site's own CTSes (cts-app, cts-criu) are listed too
got=$(gca-ctl cts --class basic | awk 'NR>1{print $1}' | sort | tr '\n' ' ')
expect_eq "cts --class basic" "$got" "cts-a cts-app cts-criu "
got=$(gca-ctl cts --core-service app | awk 'NR>1{print $1}' | sort | tr '\n' ' ')
expect_eq "cts --core-service app" "$got" "cts-app cts-b "
got=$(gca-ctl --json cts --property arch=aarch64 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["cn"][0])')
expect_eq "cts --property, --json" "$got" cts-b
got=$(gca-ctl cts --class 'x*)(cn=*' | awk 'NR>1' | wc -l)
expect_eq "a filter with LDAP special characters matches nothing" "$got" 0
out=$(gca-ctl cts remove cts-b 2>&1); expect_eq "cts remove as a broker fails" "$?" 1
check "cts remove --admin" gca-ctl --admin cts remove cts-b
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(cn=cts-b)' gcaStatus | awk '/^gcaStatus:/{print $2}')
expect_eq "the CTS is retired, not deleted" "$got" retired
out=$(gca-ctl --admin cts remove no-such-cts 2>&1); rc=$?
expect_eq "removing an unknown CTS fails" "$rc" 1
case "$out" in *not_found*) pass "and says not found" ;; *) fail "and says not found" "$out" ;; esac

# -- jobs and checkpoints (records as a CTS's checkpoint_log leaves them) --
{
	printf 'dn: gcaGID=job-7,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: job-7\ngcaCTSName: cts-a\ngcaJobState: running\ngcaOwner: alice\ngcaLastSequence: 3\n\n'
	for s in 1 2 3; do
		printf 'dn: gcaCheckpointId=0190a1b2-0000-7000-8000-00000000000%d,gcaGID=job-7,ou=jobs,o=gca\nobjectClass: gcaCheckpoint\ngcaCheckpointId: 0190a1b2-0000-7000-8000-00000000000%d\ngcaGID: job-7\ngcaSequenceNumber: %d\ngcaCTSName: cts-a\ngcaCheckpointKind: external\ngcaCheckpointTime: 2026112510000%d.000Z\n\n' $s $s $s $s
	done
} | ldapadd -x -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null
check "jobs shows job-7 at cts-a" sh -c "gca-ctl jobs | grep -q '^job-7 *cts-a *running *alice'"
check "jobs --json" sh -c "gca-ctl --json jobs | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"gcaGID\"]==[\"job-7\"]'"
got=$(gca-ctl checkpoints job-7 | awk 'NR>1{print $1}' | tr '\n' ' ')
expect_eq "checkpoints newest first" "$got" "3 2 1 "
got=$(gca-ctl --json checkpoints job-7 --limit 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["gcaSequenceNumber"][0])')
expect_eq "checkpoints --limit 1 --json" "$got" "1 3"
# pages: 2, then the rest with the cursor the first page gave
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

# -- subscribe: streams until interrupted --
timeout --preserve-status -s INT 2 gca-ctl subscribe job-7 >"$TEST_TMP/sub.out" 2>"$TEST_TMP/sub.err"; rc=$?
expect_eq "subscribe stops cleanly on Ctrl-C" "$rc" 0
check "subscribe said it was listening" grep -q 'listening for events of job-7' "$TEST_TMP/sub.err"

# -- where settings come from: flags, then GCA_* variables, then ~/.config/gca/ctl.conf --
mkdir -p "$TEST_TMP/home/.config/gca"
printf 'gcs %s\nca %s\ncert %s\nkey %s\n' "$GCA_GCS_ENDPOINT" "$GCA_CA_FILE" "$GCA_CERT_FILE" "$GCA_KEY_FILE" > "$TEST_TMP/home/.config/gca/ctl.conf"
check "ctl.conf alone is enough" env -u GCA_GCS_ENDPOINT -u GCA_CA_FILE -u GCA_CERT_FILE -u GCA_KEY_FILE HOME="$TEST_TMP/home" gca-ctl status
out=$(env -u GCA_GCS_ENDPOINT HOME=/nonexistent gca-ctl status 2>&1); rc=$?
expect_eq "no GCS anywhere: exit 1" "$rc" 1
case "$out" in *"site.env"*) pass "and says what to do" ;; *) fail "and says what to do" "$out" ;; esac
out=$(gca-ctl --gcs 127.0.0.1:1 status 2>&1); rc=$?
expect_eq "a flag wins over the environment" "$rc" 1
case "$out" in *"cannot reach the GCS"*) pass "and the error names the GCS" ;; *) fail "and the error names the GCS" "$out" ;; esac
done_testing
