# tests/vm/criu_site.sh: what the criu VM suites share, up to the guest's scenario.
# Sourced by tests/vm/criu.sh and criu_incr.sh (after tests/lib.sh and lab.sh), with S (the
# suite's name) and CRIU_CTS_MORE (the guest's extra cts.conf lines) set. It checks what the suite
# needs (not_run otherwise), builds the test job, the kernel and the initramfs, brings the site up
# on the host (PKI naming 10.0.2.2, gca-site, site.env) and writes the guest CTS's identity,
# descriptor and cts.conf into the 9p share. Sets T, job, site, share, gcs_port, fwd, suite_t0 and
# since().
suite_t0=$(date +%s.%N)
why=$(lab_usable)
[ -z "$why" ] || not_run $S "$why"
command -v criu >/dev/null || not_run $S "criu is not installed (make deps)"
command -v ldapsearch >/dev/null || not_run $S "ldapsearch is not installed (make deps)"
# the programs under test: one that did not build is a failure, not a part missing here
for p in gca-cts gca-exec gca-recover gca-gcs gca-ctl; do
	[ -x "$GCA_BUILD/$p" ] || { fail "$GCA_BUILD/$p is built (make)"; exit 1; }
done
test_tmpdir
T=$TEST_TMP
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the job, the kernel, the initramfs ----
job=$LAB_CACHE/job
mkdir -p "$LAB_CACHE"
if [ ! -x "$job" ] || [ "$GCA_TOP/tests/vm/guest/job.c" -nt "$job" ]; then
	cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$job" "$GCA_TOP/tests/vm/guest/job.c" ||
		{ fail "the test job builds"; exit 1; }
fi
lab_kernel 2>"$T/kernel.err" || not_run $S "no Debian 12 kernel: $(cat "$T/kernel.err")"
pass "Debian 12 kernel $LAB_KREL (apt-get download, unpacked, not installed)"
t=$(date +%s.%N)
lab_initramfs "$(command -v criu)" "$GCA_BUILD/gca-cts" "$GCA_BUILD/gca-exec" \
	"$GCA_BUILD/gca-recover" "$job" || { fail "the initramfs builds"; exit 1; }
pass "initramfs with busybox, criu, gca-cts, gca-exec, gca-recover and the net/virtio/9p modules ($(since "$t") s)"

# ---- the site on the host; the guest CTS's identity and configuration ----
site=$T/site
share=$T/share
mkdir -p "$share" "$site"
# The guest dials the GCS at 10.0.2.2: its certificate must name that address too.
gca-pki init "$site/pki" >/dev/null &&
	gca-pki issue "$site/pki" gcs gcs-1 --host 127.0.0.1 --host ::1 --host localhost --host 10.0.2.2 >/dev/null ||
	{ fail "the site's PKI"; exit 1; }
on_exit "gca-site down '$site'"
GCA_SITE_HEARTBEAT=2 gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; cat "$T/site.log" | sed 's/^/#   /'; exit 1; }
. "$site/site.env"
gcs_port=${GCA_GCS_ENDPOINT##*:}
gca-pki issue "$site/pki" cts cts-vm >/dev/null
mkdir -p "$share/pki"
cp -p "$site/pki/ca.crt" "$site/pki/cts-cts-vm.crt" "$site/pki/cts-cts-vm.key" "$share/pki/"
free_host_port() {
	local p
	for p in $(shuf -i 20000-30000 -n 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}
fwd=$(free_host_port)
cat > "$share/cts-vm.ldif" <<LDIF
dn: cn=cts-vm,ou=cts,$GCA_BASE_DN
gcaCoreService: criu
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: FALSE
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
gcaExecuteParams: GCA_JOB_NAME={gid}
gcaRecoveryParams: GCA_JOB_NAME={gid}
description: the criu CTS of the qemu guest (VM suite $S)
LDIF
cat > "$share/cts-vm.conf" <<CONF
name cts-vm
core_service criu
descriptor /mnt/share/cts-vm.ldif
listen 0.0.0.0:7000
endpoint 127.0.0.1:$fwd
socket /run/cts-vm.sock
gcs 10.0.2.2:$gcs_port
ca /mnt/share/pki/ca.crt
cert /mnt/share/pki/cts-cts-vm.crt
key /mnt/share/pki/cts-cts-vm.key
state /tmp/cts-vm
heartbeat 2
$CRIU_CTS_MORE
CONF
