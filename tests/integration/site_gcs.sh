# gca-site brings up a directory, a PKI and a gca-gcs; site.env names them for brokers.
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
on_exit "gca-site down $site"

check "gca-site up" gca-site up "$site"
. "$site/site.env"
for v in GCA_LDAP_URI GCA_BASE_DN GCA_GCS_ENDPOINT GCA_CA_FILE GCA_CERT_FILE GCA_KEY_FILE; do
	check "site.env sets $v" test -n "${!v:-}"
done
check "the broker's certificate and key are there" test -r "$GCA_CERT_FILE" -a -r "$GCA_KEY_FILE"
if grep -qE 'ADMIN|gcs-directory|password' "$site/site.env"; then fail "site.env holds no secret of the admin or the GCS"
else pass "site.env holds no secret of the admin or the GCS"; fi
expect_eq "admin.env is readable by its owner only" "$(stat -c %a "$site/admin.env")" 600
check "admin.env names the admin certificate" grep -q GCA_ADMIN_CERT_FILE "$site/admin.env"
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=services,o=gca '(objectClass=gcaService)' gcaEndpoint | awk '/^gcaEndpoint:/{print $2}')
expect_eq "brokers find the GCS endpoint with ldapsearch (paper 5.6)" "$got" "$GCA_GCS_ENDPOINT"
out=$(openssl s_client -connect "$GCA_GCS_ENDPOINT" -CAfile "$GCA_CA_FILE" -cert "$GCA_CERT_FILE" -key "$GCA_KEY_FILE" -verify_return_error </dev/null 2>&1)
if echo "$out" | grep -q 'Verify return code: 0 (ok)' && echo "$out" | grep -q 'TLSv1.3'; then
	pass "a broker reaches the GCS over TLS 1.3 with its certificate"
else fail "a broker reaches the GCS over TLS 1.3 with its certificate" "$(echo "$out" | tail -3)"; fi
check "gca-site status says gca-gcs runs" sh -c "gca-site status '$site' | grep -q 'gca-gcs *running'"
port1=$GCA_GCS_ENDPOINT
check "a second up is idempotent" gca-site up "$site"
. "$site/site.env"
expect_eq "the GCS keeps its endpoint" "$GCA_GCS_ENDPOINT" "$port1"
n=$(pgrep -fc "gca-gcs -f $site/gcs.conf" || true)
expect_eq "one gca-gcs, not two" "$n" 1
check "gca-site down" gca-site down "$site"
if pgrep -f "gca-gcs -f $site/gcs.conf" >/dev/null; then fail "down stopped gca-gcs"; else pass "down stopped gca-gcs"; fi
check "up again after down" gca-site up "$site"
. "$site/site.env"
expect_eq "the GCS comes back on its port" "$GCA_GCS_ENDPOINT" "$port1"
done_testing
