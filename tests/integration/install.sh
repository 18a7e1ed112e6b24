# make install into a DESTDIR: every program, the library, its header, the schema and every man
# page; a program missing from the build fails it; then the installed gca-site runs a site from it.
# timeout: 150
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
root=$TEST_TMP/root
check "make install DESTDIR=… PREFIX=/opt/gca" make -s -C "$GCA_TOP" install DESTDIR="$root" PREFIX=/opt/gca SAN="${GCA_SAN:-}"
for f in bin/gca-ctl bin/gca-exec bin/gca-recover bin/vmm-ready-job-executor bin/vmm-ready-job-resumer \
	bin/gca-site bin/gca-pki sbin/gca-gcs sbin/gca-cts; do
	check "installs $f (executable)" test -f "$root/opt/gca/$f" -a -x "$root/opt/gca/$f"
done
for f in lib/libgca_app.a include/gca_app.h share/gca/schema/gca.schema share/gca/schema/gca.ldif; do
	check "installs $f" test -f "$root/opt/gca/$f"
done
n=0
for m in "$GCA_TOP"/docs/man/*.[0-9]; do
	sec=${m##*.}; n=$((n + 1))
	check "installs man$sec/${m##*/}" cmp -s "$m" "$root/opt/gca/share/man/man$sec/${m##*/}"
done
[ "$n" -ge 12 ] && pass "every page of docs/man ($n)" || fail "every page of docs/man" "only $n"
if command -v man >/dev/null; then
	for m in "$GCA_TOP"/docs/man/*.[0-9]; do
		w=$(LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$m" 2>&1 >/dev/null)
		expect_eq "man --warnings -l ${m##*/}: no warning" "$w" ""
	done
else
	echo "install: not run: man --warnings on the pages (man is not installed: make deps)"
fi
check "the installed gca-ctl runs" "$root/opt/gca/bin/gca-ctl" --help

# a build without gca-ctl: make install fails, naming it (make -o all: nothing is rebuilt)
b=$TEST_TMP/partial-build
mkdir -p "$b"
for p in gca-exec gca-recover vmm-ready-job-executor vmm-ready-job-resumer gca-gcs gca-cts libgca_app.a; do cp "$GCA_BUILD/$p" "$b/"; done
out=$(make -s -C "$GCA_TOP" -o all install B="$b" DESTDIR="$TEST_TMP/partial" PREFIX=/opt/gca 2>&1); rc=$?
case "$rc $out" in 0*) fail "make install without a built gca-ctl fails" "$out" ;; *gca-ctl*) pass "make install without a built gca-ctl fails, naming it" ;; *) fail "and names it" "$out" ;; esac

site=$TEST_TMP/site
on_exit "'$root/opt/gca/bin/gca-site' down $site"
check "the installed gca-site brings a site up" env -u GCA_BUILD GCA_BUILD=/nonexistent "$root/opt/gca/bin/gca-site" up "$site"
. "$site/site.env"
check "its directory has the basic class" sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b ou=classes,o=gca '(cn=basic)' | grep -q '^cn: basic'"
check "its gca-gcs is the installed one" sh -c "pgrep -af 'gca-gcs -f $site/gcs.conf' | grep -q '$root/opt/gca/sbin/gca-gcs'"
check "its gca-cts is the installed one" sh -c "pgrep -af 'gca-cts -f $site/cts-app.conf' | grep -q '$root/opt/gca/sbin/gca-cts'"
got=$(env -i PATH=/usr/bin:/bin sh -c ". '$site/site.env'; echo \"\$PATH\"")
expect_eq "its site.env puts PREFIX/bin first, and nothing that does not exist" "$got" "$root/opt/gca/bin:/usr/bin:/bin"
check "a broker uses the installed gca-ctl from it" sh -c "env -i PATH=/usr/bin:/bin sh -c '. $site/site.env; command -v gca-ctl; gca-ctl status' | grep -qx '$root/opt/gca/bin/gca-ctl'"
done_testing
