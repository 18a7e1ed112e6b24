# make install into a DESTDIR, then the installed gca-site runs a site from it.
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
root=$TEST_TMP/root
check "make install DESTDIR=… PREFIX=/opt/gca" make -s -C "$GCA_TOP" install DESTDIR="$root" PREFIX=/opt/gca SAN="${GCA_SAN:-}"
for f in bin/gca-site bin/gca-pki sbin/gca-gcs share/gca/schema/gca.schema share/gca/schema/gca.ldif \
	share/man/man8/gca-gcs.8 share/man/man5/gcs.conf.5; do
	check "installs $f" test -f "$root/opt/gca/$f"
done
site=$TEST_TMP/site
on_exit "'$root/opt/gca/bin/gca-site' down $site"
check "the installed gca-site brings a site up" env -u GCA_BUILD GCA_BUILD=/nonexistent "$root/opt/gca/bin/gca-site" up "$site"
. "$site/site.env"
check "its directory has the basic class" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=classes,o=gca '(cn=basic)' | grep -q '^cn: basic'"
check "its gca-gcs is the installed one" sh -c "pgrep -af 'gca-gcs -f $site/gcs.conf' | grep -q '$root/opt/gca/sbin/gca-gcs'"
done_testing
