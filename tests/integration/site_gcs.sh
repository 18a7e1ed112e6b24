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
check "GCA_CTS_SOCKET is the app CTS's socket" test -S "$GCA_CTS_SOCKET"
check "GCA_CTS_SOCKET_CRIU is the criu CTS's socket" test -S "${GCA_CTS_SOCKET_CRIU:-}"
# PATH: the build folder first, whatever PATH was (clean, or with scripts/ on it already), once
for p0 in /usr/bin:/bin "$GCA_TOP/scripts:/usr/bin:/bin"; do
	got=$(env -i PATH="$p0" sh -c ". '$site/site.env'; . '$site/site.env'; echo \"\$PATH\"")
	expect_eq "site.env with PATH=$p0: the build folder first, then scripts/" "$got" "$GCA_BUILD:$GCA_TOP/scripts:$p0"
done
check "the gca-ctl it finds is the built one" sh -c "env -i PATH=/usr/bin:/bin sh -c '. $site/site.env; command -v gca-ctl' | grep -qx '$GCA_BUILD/gca-ctl'"
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
status=$(gca-site status "$site"); rc=$?
expect_eq "gca-site status: exit 0 when everything runs" "$rc" 0
for part in "slapd +running" "gca-gcs +running .* gcs-1" "gca-cts +running .* cts-app " "gca-cts +running .* cts-criu "; do
	grep -qE "^$part" <<<"$status" && pass "gca-site status: $part" || fail "gca-site status: $part" "$status"
done
kill "$(cat "$site/cts-criu.pid")"
check "a part stopped: gca-site status exits 1" sh -c "gca-site status '$site' >/dev/null; test \$? = 1"
port1=$GCA_GCS_ENDPOINT
check "a second up is idempotent" gca-site up "$site"
. "$site/site.env"
expect_eq "the GCS keeps its endpoint" "$GCA_GCS_ENDPOINT" "$port1"
n=$(pgrep -fc "gca-gcs -f $site/gcs.conf" || true)
expect_eq "one gca-gcs, not two" "$n" 1
for core in app criu; do
	n=$(pgrep -fc "gca-cts -f $site/cts-$core.conf" || true)
	expect_eq "one gca-cts for $core, not two" "$n" 1
done
n=$(pgrep -fc "slapd -f $site/ldap/slapd.conf" || true)
expect_eq "one slapd, not two" "$n" 1
check "gca-site down" gca-site down "$site"
expect_eq "after down nothing of the site runs" "$(site_procs "$site")" ""
status=$(gca-site status "$site"); rc=$?
expect_eq "gca-site status after down: exit 3 (the directory is not running)" "$rc" 3
case "$status" in *"slapd      stopped"*"gca-gcs    stopped"*"gca-cts    stopped"*) pass "and says each part stopped" ;; *) fail "and says each part stopped" "$status" ;; esac
check "up again after down" gca-site up "$site"
. "$site/site.env"
expect_eq "the GCS comes back on its port" "$GCA_GCS_ENDPOINT" "$port1"
done_testing
