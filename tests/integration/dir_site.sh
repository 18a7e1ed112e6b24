# gca-site and the directory as a broker sees it: plain ldapsearch, anonymous.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
on_exit "gca-site down $site"

check "gca-site up starts a directory" gca-site up "$site" --only-directory
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
check "site.env names the directory" test -n "$GCA_LDAP_URI"
check "the basic class is there" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=classes,o=gca '(cn=basic)' | grep -q 'gcaProperty: processes=1'"
for ou in services classes cts jobs; do
	check "ou=$ou exists" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=$ou,o=gca -s base dn | grep -q '^dn: ou=$ou'"
done
mode=$(stat -c %a "$site/gcs-directory.conf")
expect_eq "the GCS's directory secret is readable by its owner only" "$mode" 600
if grep -q gcs-directory "$site/site.env"; then fail "site.env does not point to the GCS's secret"; else pass "site.env does not point to the GCS's secret"; fi

bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
gcs_add() { ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null; }

gcs_add <<LDIF
dn: cn=cts-a,ou=cts,o=gca
objectClass: gcaTranslationService
cn: cts-a
gcaCoreService: criu
gcaClass: basic
gcaProperty: arch=x86_64
gcaProperty: kernel=6.1
gcaMigration: TRUE

dn: cn=cts-b,ou=cts,o=gca
objectClass: gcaTranslationService
cn: cts-b
gcaCoreService: app
gcaClass: mpi
gcaProperty: arch=aarch64
gcaMigration: FALSE
LDIF
check "the GCS identity writes" test $? -eq 0
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(gcaClass=basic)' cn | awk '/^cn:/{print $2}')
expect_eq "ldapsearch finds a CTS by class" "$got" cts-a
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(gcaProperty=arch=aarch64)' cn | awk '/^cn:/{print $2}')
expect_eq "ldapsearch finds a CTS by a functional property" "$got" cts-b
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(&(gcaMigration=TRUE)(gcaCoreService=criu))' cn | awk '/^cn:/{print $2}')
expect_eq "ldapsearch filters on flags" "$got" cts-a

if ldapadd -x -H "$GCA_LDAP_URI" >/dev/null 2>&1 <<LDIF
dn: cn=evil,ou=classes,o=gca
objectClass: gcaCheckpointerClass
cn: evil
LDIF
then fail "an anonymous write is refused"; else pass "an anonymous write is refused"; fi
n=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b o=gca userPassword | grep -c '^userPassword' || true)
expect_eq "nobody reads a password anonymously" "$n" 0
if ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null 2>&1 <<LDIF
dn: cn=bad,ou=cts,o=gca
objectClass: gcaTranslationService
cn: bad
gcaMigration: maybe
LDIF
then fail "the schema refuses a bad flag"; else pass "the schema refuses a bad flag"; fi

# More jobs than slapd's size limit (500): a plain listing stops, a paged one gets them all.
{
	for i in $(seq 1 600); do
		printf 'dn: gcaGID=many-%d,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: many-%d\ngcaCTSName: cts-a\n\n' "$i" "$i"
	done
} | ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null
n=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=jobs,o=gca '(gcaGID=many-*)' dn 2>/dev/null | grep -c '^dn:' || true)
expect_eq "a listing without paging stops at the size limit" "$n" 500
n=$(ldapsearch -x -LLL -E pr=200/noprompt -H "$GCA_LDAP_URI" -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:')
expect_eq "a paged listing gets all 600" "$n" 600
n=$(ldapsearch -x -ZZ -LLL -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:')
expect_eq "the GCS's identity (its job cache's sync search) has no size limit: all 600" "$n" 600

# A replica of it: the replicator (which further replicas bind as) and the GCS's identity read past
# the size limit there too.
r=$TEST_TMP/replica
on_exit "gca-site down $r"
check "a replica comes up" gca-site up "$r" --replica-of "$GCA_LDAP_URI" --replicator "$site/replicator.conf"
ruri=ldap://127.0.0.1:$(awk '$1=="ldap_port"{print $2}' "$r/site.conf")
rbind=$(awk '$1=="binddn"{print $2}' "$site/replicator.conf")
rpw=$(awk '$1=="password"{print $2}' "$site/replicator.conf")
check "the 600 jobs reach the replica" wait_for 30 sh -c "test \$(ldapsearch -x -LLL -E pr=200/noprompt -H '$ruri' -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:') = 600"
rca=$(. "$r/site.env"; echo "$GCA_LDAP_CA_FILE")
n=$(LDAPTLS_CACERT=$rca ldapsearch -x -ZZ -LLL -H "$ruri" -D "$rbind" -w "$rpw" -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:')
expect_eq "on the replica, the replicator has no size limit: all 600" "$n" 600
n=$(LDAPTLS_CACERT=$rca ldapsearch -x -ZZ -LLL -H "$ruri" -D "$bind" -w "$pw" -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:')
expect_eq "nor the GCS's identity: all 600" "$n" 600

# docs/DEPLOYMENT.md shows the generated slapd.conf of a provider and of a replica: the same lines
# as gca-site writes (folder, ids, provider and password put as the page puts them).
doc_block() { awk -v h="$1" '$0 == h { f = 1; next } f && /^```/ { if (b) exit; b = 1; next } b' "$GCA_TOP/docs/DEPLOYMENT.md"; }
norm() {
	sed -e "s|$1|/srv/gca|g" -e "s|gidNumber=$(id -g)+uidNumber=$(id -u)|gidNumber=GID+uidNumber=UID|g" \
	    -e "s|$GCA_LDAP_URI|ldap://provider.example.org:389|g" -e 's|credentials=.*|credentials=<the replicator password>|' \
	    -e '/^serverID /d' -e '/^$/d'
}
got=$(diff <(doc_block "### The provider's slapd.conf (generated)" | norm /srv/gca) <(norm "$site" < "$site/ldap/slapd.conf"))
expect_eq "DEPLOYMENT.md's provider slapd.conf is the generated one" "$got" ""
got=$(diff <(doc_block "### A replica's slapd.conf (generated)" | norm /srv/gca) <(norm "$r" < "$r/ldap/slapd.conf"))
expect_eq "DEPLOYMENT.md's replica slapd.conf is the generated one" "$got" ""
check "the replica stops" gca-site down "$r"

# A fresh folder made a provider with a peer in one call: its replication identity is made first.
p=$TEST_TMP/peer
on_exit "gca-site down $p"
check "gca-site up NEW --server-id 1 --peer URI" gca-site up "$p" --only-directory --server-id 1 --peer ldap://127.0.0.1:1
ppw=$(awk '$1=="password"{print $2}' "$p/replicator.conf" 2>/dev/null)
check "its slapd.conf pulls from the peer with replicator.conf's password" grep -q "credentials=$ppw\$" "$p/ldap/slapd.conf"
puri=ldap://127.0.0.1:$(awk '$1=="ldap_port"{print $2}' "$p/site.conf")
check "and the replicator binds with it (over StartTLS)" env LDAPTLS_CACERT="$p/pki/ca.crt" ldapwhoami -x -ZZ -H "$puri" -D "cn=replicator,o=gca" -w "$ppw"
check "it stops" gca-site down "$p"

# A second `up` with a newer schema keeps the data and loads the schema.
cp -r "$GCA_TOP/schema" "$TEST_TMP/schema"
sed -i 's/^objectclass ( gcaClass:6 NAME/attributetype ( gcaAttr:99 NAME '"'"'gcaTestNewer'"'"' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n&/' "$TEST_TMP/schema/gca.schema"
check "the newer schema file differs" sh -c "! cmp -s '$GCA_TOP/schema/gca.schema' '$TEST_TMP/schema/gca.schema'"
check "gca-site up again with a newer schema" env GCA_SCHEMA_DIR="$TEST_TMP/schema" gca-site up "$site" --only-directory
. "$site/site.env"
got=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b ou=cts,o=gca '(gcaClass=basic)' cn | awk '/^cn:/{print $2}')
expect_eq "the data survived the schema upgrade" "$got" cts-a
check "the newer attribute is known" sh -c "ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b cn=Subschema -s base attributeTypes | grep -q gcaTestNewer"
check "gca-site status says slapd runs" gca-site status "$site" --only-directory
check "gca-site down stops it" gca-site down "$site"
if gca-site status "$site" >/dev/null 2>&1; then fail "status after down says stopped"; else pass "status after down says stopped"; fi
expect_eq "after down nothing of the site runs" "$(site_procs "$site")" ""
check "the data folder stays after down" test -d "$site/ldap/data"
check "gca-site up restarts on the kept data" gca-site up "$site" --only-directory
n=$(ldapsearch -x -LLL -E pr=200/noprompt -H "$GCA_LDAP_URI" -b ou=jobs,o=gca '(gcaGID=many-*)' dn | grep -c '^dn:')
expect_eq "all 600 jobs are back" "$n" 600
done_testing
