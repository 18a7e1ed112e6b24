# A read-only replica of the directory (gca-site up --replica-of): syncrepl refreshAndPersist from
# the site's slapd; a broker reading only the replica finds every CTS, class, job and checkpoint
# record the provider holds; writes are referred to the provider; a replica that was down catches up.
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
replica=$TEST_TMP/replica
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
on_exit "gca-site down $replica"
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || not_run replica "slapd is not installed"
counter=$GCA_BUILD/examples/counter

check "gca-site up (the provider)" gca-site up "$site"
check "the provider made a replication identity, 0600" test "$(stat -c %a "$site/replicator.conf")" = 600
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
provider=$GCA_LDAP_URI
check "gca-site up --replica-of" gca-site up "$replica" --replica-of "$provider" --replicator "$site/replicator.conf"
replica_uri=$(. "$replica/site.env"; echo "$GCA_LDAP_URI")
check "the replica's site.env names its own directory and the provider" \
	sh -c ". '$replica/site.env'; test \"\$GCA_LDAP_URI\" != '$provider' && test \"\$GCA_PROVIDER_URI\" = '$provider'"
check "the replica's slapd.conf (it holds the replicator's password) is its owner's only" \
	test "$(stat -c %a "$replica/ldap/slapd.conf")" = 600
check "the replica runs slapd alone" sh -c "! test -e '$replica/gcs.pid' && gca-site status '$replica' | grep -q 'slapd *running'"

# What a broker sees: every entry with its user attributes, sorted, from one server.
view() {
	ldapsearch -x -LLL -o ldif-wrap=no -H "$1" -b "$2" -E pr=200/noprompt '(objectClass=*)' 2>/dev/null |
		grep -v '^#' | awk 'BEGIN{RS=""} {print}' | sort
}
same() { [ "$(view "$provider" "$1")" = "$(view "$replica_uri" "$1")" ] && [ -n "$(view "$replica_uri" "$1")" ]; }
count() { ldapsearch -x -LLL -H "$1" -b "ou=jobs,$GCA_BASE_DN" -E pr=200/noprompt "$2" dn 2>/dev/null | grep -c '^dn:'; }

# -- a job and its checkpoints, through the GCS, on the provider --
gid=replicated-1
log=$TEST_TMP/counter.log
gca-exec --gid "$gid" -- "$counter" --log "$log" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "a job runs under gca-exec" wait_for 10 grep -q 'counter 3' "$log"
for k in 1 2 3; do check "checkpoint $k through the GCS" gca-ctl checkpoint "$gid"; done
check "gca-ctl class add --admin (a class the CTSes did not bring)" \
	sh -c ". '$site/admin.env'; gca-ctl --admin class add mpi ranks=many"

for ou in cts classes jobs services; do
	check "ou=$ou on the replica equals the provider (ldapsearch)" wait_for 10 same "ou=$ou,$GCA_BASE_DN"
done
expect_eq "three checkpoint records on the replica" "$(count "$replica_uri" '(objectClass=gcaCheckpoint)')" 3
check "the replica answers a broker's filter (gcaGID, indexed)" \
	sh -c "ldapsearch -x -LLL -H '$replica_uri' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=$gid)(gcaSequenceNumber=2))' gcaCheckpointId | grep -q '^gcaCheckpointId:'"
n=$(ldapsearch -x -LLL -H "$replica_uri" -b "$GCA_BASE_DN" userPassword | grep -c '^userPassword' || true)
expect_eq "nobody reads a password on the replica" "$n" 0

# -- read-only: a write is referred to the provider, even with the GCS's own identity --
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
out=$(LDAPTLS_CACERT=$(. "$replica/site.env"; echo "$GCA_LDAP_CA_FILE") ldapadd -x -ZZ -H "$replica_uri" -D "$bind" -w "$pw" 2>&1 <<LDIF
dn: cn=evil,ou=classes,$GCA_BASE_DN
objectClass: gcaCheckpointerClass
cn: evil
LDIF
); rc=$?
expect_eq "a write to the replica gets a referral (LDAP 10)" "$rc" 10
case "$out" in *"$provider"*) pass "the referral names the provider" ;; *) fail "the referral names the provider" "$out" ;; esac
out=$(ldapmodify -Q -Y EXTERNAL -H "ldapi://$(echo "$replica/ldap/ldapi" | sed 's|/|%2F|g')" 2>&1 <<LDIF
dn: cn=basic,ou=classes,$GCA_BASE_DN
changetype: modify
replace: description
description: changed on the replica
LDIF
); rc=$?
[ $rc -ne 0 ] && pass "not even the replica's operator writes it (rc $rc)" || fail "the replica's operator cannot write" "$out"

# -- the replica down while records are written; it catches up when it comes back --
check "gca-site down (the replica)" gca-site down "$replica"
for k in 4 5 6 7 8; do gca-ctl checkpoint "$gid" >/dev/null 2>&1 || fail "checkpoint $k while the replica is down"; done
check "gca-site up again (no flags: it stays a replica)" gca-site up "$replica"
check "the replica caught up: ou=jobs equals the provider" wait_for 15 same "ou=jobs,$GCA_BASE_DN"
expect_eq "eight checkpoint records on the replica" "$(count "$replica_uri" '(objectClass=gcaCheckpoint)')" 8

# -- the provider down: the replica keeps answering; changes flow again once it is back --
kill "$(cat "$site/ldap/slapd.pid")"
wait_for 10 sh -c "! ldapsearch -x -H '$provider' -s base -b '' >/dev/null 2>&1"
expect_eq "the replica still answers with the provider's slapd down" "$(count "$replica_uri" '(objectClass=gcaCheckpoint)')" 8
check "gca-site up (the provider's slapd again)" gca-site up "$site"
. "$site/site.env"
if [ "$GCA_LDAP_URI" != "$provider" ]; then fail "the provider kept its port" "$GCA_LDAP_URI"; fi
check "a checkpoint after the provider's restart" wait_for 20 gca-ctl checkpoint "$gid"
check "and it reaches the replica" wait_for 15 same "ou=jobs,$GCA_BASE_DN"
done_testing
