# The directory's links over TLS (docs/DEPLOYMENT.md, "TLS to the directory"): slapd refuses a
# simple bind that is not over TLS; the GCS binds with its directory certificate (SASL EXTERNAL) and
# records checkpoints; anonymous reads work over ldap:// and ldaps://; a replica stays in step over
# StartTLS (the provider refuses its password otherwise); a client certificate or a provider from
# another CA is refused; with --ldap-require-cert only a certificate holder reads.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
replica=$TEST_TMP/replica
stranger=$TEST_TMP/stranger
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
on_exit "gca-site down $replica"
on_exit "gca-site down $stranger"
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || not_run dir_tls "slapd is not installed"
counter=$GCA_BUILD/examples/counter

check "gca-site up" gca-site up "$site"
. "$site/site.env"
check "site.env names an ldaps:// URI and the CA" sh -c "case '$GCA_LDAPS_URI' in ldaps://127.0.0.1:*) test -f '$GCA_LDAP_CA_FILE' ;; *) false ;; esac"
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
ca=$GCA_LDAP_CA_FILE

# -- the bind --
out=$(ldapwhoami -x -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" 2>&1); rc=$?
expect_eq "a plain (non-TLS) simple bind as the GCS's identity is refused: confidentiality required (13)" "$rc" 13
check "the same bind over StartTLS with the CA checked works" \
	env LDAPTLS_CACERT="$ca" ldapwhoami -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw"
check "and over ldaps://" env LDAPTLS_CACERT="$ca" ldapwhoami -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw"
check "the site's own tools keep ldapi:// (SASL EXTERNAL as the operator)" \
	ldapwhoami -Q -Y EXTERNAL -H "ldapi://$(echo "$site/ldap/ldapi" | sed 's|/|%2F|g')"
check "the GCS connected with its directory certificate" grep -q "connected as $bind (TLS certificate)" "$site/log/gcs.log"
check "slapd saw the GCS's SASL EXTERNAL bind over TLS, mapped to its DN" \
	grep -Eq "BIND dn=\"$bind\" mech=EXTERNAL bind_ssf=0 ssf=[1-9][0-9]{2}" "$site/log/slapd.log"

# -- the GCS works over TLS: a checkpoint recorded --
gid=tls-1
log=$TEST_TMP/counter.log
gca-exec --gid "$gid" -- "$counter" --log "$log" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "a job runs under gca-exec" wait_for 10 grep -q 'counter 3' "$log"
check "a checkpoint through the GCS" gca-ctl checkpoint "$gid"
count() { ldapsearch -x -LLL -H "$1" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid))" dn 2>/dev/null | grep -c '^dn:'; }
expect_eq "its record is in the directory" "$(count "$GCA_LDAP_URI")" 1

# -- anonymous reads over either --
check "an anonymous ldapsearch over ldap://" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=services,o=gca dn | grep -q '^dn: cn=gcs-1'"
check "an anonymous ldapsearch over ldaps:// (LDAPTLS_CACERT)" \
	sh -c "LDAPTLS_CACERT='$ca' ldapsearch -x -LLL -H '$GCA_LDAPS_URI' -b ou=services,o=gca dn | grep -q '^dn: cn=gcs-1'"

# -- another CA --
check "a second CA (gca-pki init elsewhere)" gca-pki init "$TEST_TMP/other"
check "a broker certificate of the second CA" gca-pki issue "$TEST_TMP/other" broker broker
out=$(LDAPTLS_CACERT=$ca LDAPTLS_CERT=$TEST_TMP/other/broker-broker.crt LDAPTLS_KEY=$TEST_TMP/other/broker-broker.key \
	ldapwhoami -Q -Y EXTERNAL -H "$GCA_LDAPS_URI" 2>&1); rc=$?
[ $rc -ne 0 ] && pass "a client certificate from another CA is refused (rc $rc)" || fail "a client certificate from another CA is refused" "$out"
got=$(LDAPTLS_CACERT=$ca LDAPTLS_CERT=$site/pki/broker-broker.crt LDAPTLS_KEY=$site/pki/broker-broker.key \
	ldapwhoami -Q -Y EXTERNAL -H "$GCA_LDAPS_URI" 2>&1)
expect_eq "the site's broker certificate is known by its subject" "$got" "dn:cn=broker,ou=broker,o=gca"
if LDAPTLS_CACERT=$TEST_TMP/other/ca.crt ldapsearch -x -H "$GCA_LDAPS_URI" -s base -b o=gca dn >/dev/null 2>&1; then
	fail "a client that trusts only the other CA refuses slapd"
else pass "a client that trusts only the other CA refuses slapd"; fi

# -- a replica over TLS --
check "gca-site up --replica-of (StartTLS, the provider's CA from replicator.conf)" \
	gca-site up "$replica" --replica-of "$GCA_LDAP_URI" --replicator "$site/replicator.conf"
check "the replica's syncrepl needs StartTLS and checks the provider's certificate" \
	sh -c "grep -q 'starttls=critical' '$replica/ldap/slapd.conf' && grep -q 'tls_reqcert=demand' '$replica/ldap/slapd.conf'"
ruri=$(. "$replica/site.env"; echo "$GCA_LDAP_URI")
check "a second checkpoint through the GCS" gca-ctl checkpoint "$gid"
check "the replica is in step (both records; its password crossed only TLS: plain is refused)" \
	wait_for 15 sh -c "test \$(ldapsearch -x -LLL -H '$ruri' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=$gid))' dn | grep -c '^dn:') = 2"
rca=$(. "$replica/site.env"; echo "$GCA_LDAP_CA_FILE")
rs=$(. "$replica/site.env"; echo "$GCA_LDAPS_URI")
check "the replica serves ldaps:// too (with a certificate of the site CA)" \
	sh -c "LDAPTLS_CACERT='$rca' ldapsearch -x -LLL -H '$rs' -b 'ou=jobs,$GCA_BASE_DN' '(gcaGID=$gid)' dn | grep -q '^dn:'"
check "the replica stops" gca-site down "$replica"

# A replica told to trust another CA: the provider's certificate fails its check, nothing arrives.
check "a replica that trusts only the other CA comes up" \
	gca-site up "$stranger" --replica-of "$GCA_LDAP_URI" --replicator "$site/replicator.conf" --provider-ca "$TEST_TMP/other/ca.crt"
n=$(ldapsearch -x -LLL -H "$(. "$stranger/site.env"; echo "$GCA_LDAP_URI")" -b "$GCA_BASE_DN" -s base dn 2>/dev/null | grep -c '^dn:' || true)
expect_eq "it gets nothing from a provider whose certificate its CA did not sign" "$n" 0
check "its slapd says why (TLS)" grep -Eqi "tls|certificate" "$stranger/log/slapd.log"
check "it stops" gca-site down "$stranger"
# A replica (a peer) whose own certificate comes from another CA: the provider refuses it at the
# handshake (syncrepl shows slapd's certificate), nothing arrives.
stranger2=$TEST_TMP/stranger2
on_exit "gca-site down $stranger2"
check "an ldap certificate of the second CA" gca-pki issue "$TEST_TMP/other" ldap intruder
check "a replica with it comes up" gca-site up "$stranger2" --replica-of "$GCA_LDAP_URI" --replicator "$site/replicator.conf" \
	--ldap-cert "$TEST_TMP/other/ldap-intruder.crt" --ldap-key "$TEST_TMP/other/ldap-intruder.key"
n=$(ldapsearch -x -LLL -H "$(. "$stranger2/site.env"; echo "$GCA_LDAP_URI")" -b "$GCA_BASE_DN" -s base dn 2>/dev/null | grep -c '^dn:' || true)
expect_eq "the provider refuses a peer whose certificate another CA signed: nothing arrives" "$n" 0
check "the provider's slapd says the TLS negotiation failed" grep -q "closed (TLS negotiation failure)" "$site/log/slapd.log"
check "it stops" gca-site down "$stranger2"

# -- --ldap-require-cert --
check "gca-site up --ldap-require-cert" gca-site up "$site" --ldap-require-cert
n=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=services,o=gca dn 2>/dev/null | grep -c '^dn:' || true)
expect_eq "an anonymous read gets nothing over ldap://" "$n" 0
n=$(LDAPTLS_CACERT=$ca ldapsearch -x -LLL -H "$GCA_LDAPS_URI" -b ou=services,o=gca dn 2>/dev/null | grep -c '^dn:' || true)
expect_eq "nor over ldaps://" "$n" 0
check "a broker certificate reads (SASL EXTERNAL over ldaps://)" \
	sh -c "LDAPTLS_CACERT='$ca' LDAPTLS_CERT='$site/pki/broker-broker.crt' LDAPTLS_KEY='$site/pki/broker-broker.key' ldapsearch -Q -Y EXTERNAL -LLL -H '$GCA_LDAPS_URI' -b ou=services,o=gca dn | grep -q '^dn: cn=gcs-1'"
check "the GCS still records a checkpoint" gca-ctl checkpoint "$gid"
check "and the broker sees three records" \
	wait_for 10 sh -c "test \$(LDAPTLS_CACERT='$ca' LDAPTLS_CERT='$site/pki/broker-broker.crt' LDAPTLS_KEY='$site/pki/broker-broker.key' ldapsearch -Q -Y EXTERNAL -LLL -H '$GCA_LDAPS_URI' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=$gid))' dn | grep -c '^dn:') = 3"
check "gca-site up --no-ldap-require-cert" gca-site up "$site" --no-ldap-require-cert
check "anyone reads again" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=services,o=gca dn | grep -q '^dn: cn=gcs-1'"
done_testing
