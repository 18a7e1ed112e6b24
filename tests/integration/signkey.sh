# A CTS signs its images' manifests with a signing key of its own (gca-pki role sign), never its
# TLS key (docs/DESIGN.md, "Keys"). A site folder made before CTSes had signing keys (the sign
# files and cts.conf lines taken away, its images signed with the TLS key as before) takes over on
# `gca-site up`: the old images still restore, new ones are signed with the new key. A CTS without
# a signing identity refuses to start and says how to make one; a manifest signed by another role
# is refused, naming the signer.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up" gca-site up "$site"
. "$site/site.env"
counter=$GCA_BUILD/examples/counter
[ -x "$counter" ] || { fail "examples/counter is built"; exit 1; }
pki=$site/pki
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }
# signer DIR: "OU CN" of the certificate a manifest.sig carries
signer() {
	cut -d. -f3 "$1/manifest.sig" | base64 -d 2>/dev/null | openssl x509 -inform DER -noout \
		-subject -nameopt multiline 2>/dev/null |
		awk -F' = ' '/organizationalUnitName/{ou=$2} /commonName/{cn=$2} END{print ou, cn}'
}
# resign DIR NAME: manifest.sig made again with pki/NAME.key, carrying pki/NAME.crt, as the CTS
# does (proto/grant.c: S1.<b64 sig>.<b64 DER cert>)
resign() {
	printf 'S1.%s.%s\n' "$(openssl dgst -sha256 -sign "$pki/$2.key" "$1/manifest" | base64 -w0)" \
		"$(openssl x509 -in "$pki/$2.crt" -outform DER | base64 -w0)" > "$1/manifest.sig"
}
imgdir() { echo "$site/cts/cts-app/images/$gid/$1"; }
gid=signkey-job

expect_eq "gca-site made cts-app's signing certificate: OU sign, CN cts-app" \
	"$(openssl x509 -in "$pki/sign-cts-app.crt" -noout -subject -nameopt multiline | awk -F' = ' '/organizationalUnitName/{ou=$2} /commonName/{cn=$2} END{print ou, cn}')" "sign cts-app"
check "it is no TLS client or server (extended key usage codeSigning only)" sh -c \
	"openssl x509 -in '$pki/sign-cts-app.crt' -noout -ext extendedKeyUsage | grep -qx '[[:space:]]*Code Signing'"

# -- a job, two checkpoints: signed with the signing key --
log1=$TEST_TMP/counter1.log
gca-exec --gid "$gid" -- "$counter" --log "$log1" --tick 20 &
job1=$!
on_exit "kill -9 $job1"
check "the counter runs under gca-exec" wait_for 10 reached "$log1" 5
ids=()
for k in 1 2; do
	n=$(last_count "$log1")
	wait_for 10 reached "$log1" $((n + 3))
	out=$(gca-ctl checkpoint "$gid" 2>&1) || fail "checkpoint $k" "$out"
	ids+=("$(echo "$out" | awk '$1=="checkpoint"{print $2}')")
done
expect_eq "a new image's manifest.sig names cts-app's signing certificate" "$(signer "$(imgdir "${ids[0]}")")" "sign cts-app"
kill -9 $job1; wait $job1 2>/dev/null

# -- the folder as today's main left it: no sign files, no sign lines, images signed with the TLS key --
check "gca-site down" gca-site down "$site"
resign "$(imgdir "${ids[0]}")" cts-cts-app
expect_eq "image 1 is signed as before signing keys (cts-app's TLS certificate)" "$(signer "$(imgdir "${ids[0]}")")" "cts cts-app"
resign "$(imgdir "${ids[1]}")" gcs-gcs-1
rm -f "$pki"/sign-cts-*.crt "$pki"/sign-cts-*.key
sed -i '/^sign_/d' "$site/cts-app.conf"
out=$(timeout 20 gca-cts -f "$site/cts-app.conf" 2>&1); rc=$?
case "$rc $out" in
1\ *"no signing key"*"gca-pki issue PKI_DIR sign cts-app"*) pass "gca-cts without a signing key refuses to start, naming the gca-pki command" ;;
*) fail "gca-cts without a signing key refuses to start" "$rc $out" ;;
esac
sed "s|^key .*|&\nsign_cert $pki/cts-cts-app.crt\nsign_key $pki/cts-cts-app.key|" "$site/cts-app.conf" > "$TEST_TMP/tlskey.conf"
out=$(timeout 20 gca-cts -f "$TEST_TMP/tlskey.conf" 2>&1); rc=$?
case "$rc $out" in
1\ *"not signed by a sign certificate (signed by cts cts-app)"*) pass "gca-cts with its TLS key as the signing key refuses to start" ;;
*) fail "gca-cts with its TLS key as the signing key refuses to start" "$rc $out" ;;
esac

# -- gca-site up takes the folder over --
check "gca-site up on the old folder" gca-site up "$site"
check "it made the signing key (0600) and certificate" test -f "$pki/sign-cts-app.crt" -a "$(stat -c %a "$pki/sign-cts-app.key" 2>/dev/null)" = 600
check "cts-app.conf names them" grep -qx "sign_cert $pki/sign-cts-app.crt" "$site/cts-app.conf"
check "and the time of the move: TLS-signed images verify only if taken before it" \
	grep -qx "tls_signed_before $(cat "$pki/tls-signed-before")" "$site/cts-app.conf"

# -- the image signed with the TLS key still restores; a new one gets the signing key --
want=$(cat "$(imgdir "${ids[0]}")/counter")
log2=$TEST_TMP/counter2.log
gca-recover --gid "$gid" --checkpoint "${ids[0]}" -- "$counter" --log "$log2" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover of the image signed with the TLS key: the counter resumes" wait_for 10 reached "$log2" $((want + 2))
expect_eq "from that image's state" "$(awk '$1=="restored"{print $2}' "$log2")" "$want"
out=$(gca-ctl checkpoint "$gid" 2>&1); id3=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
expect_eq "the next checkpoint is signed with the new signing key" "$(signer "$(imgdir "$id3")")" "sign cts-app"
kill -TERM $rec; wait $rec

# -- a manifest signed by the GCS's certificate: refused, naming it --
out=$(timeout 30 gca-recover --gid "$gid" --checkpoint "${ids[1]}" -- "$counter" --log "$TEST_TMP/counter3.log" 2>&1); rc=$?
case "$rc $out" in
0\ *) fail "an image signed by the GCS's certificate is refused" "$out" ;;
*"not signed by a sign|cts certificate (signed by gcs gcs-1)"*) pass "an image signed by the GCS's certificate is refused, naming the signer" ;;
*) fail "an image signed by the GCS's certificate is refused, naming the signer" "$rc $out" ;;
esac
check "and the job did not start" test ! -s "$TEST_TMP/counter3.log"

# -- an image taken after the move but signed with the TLS key (a stolen network-side key): refused --
resign "$(imgdir "$id3")" cts-cts-app
out=$(timeout 30 gca-recover --gid "$gid" --checkpoint "$id3" -- "$counter" --log "$TEST_TMP/counter4.log" 2>&1); rc=$?
case "$rc $out" in
0\ *) fail "a new image signed with the TLS key is refused" "$out" ;;
*"accepted only for checkpoints taken before tls_signed_before"*) pass "a new image signed with the TLS key is refused: only images older than the move may carry it" ;;
*) fail "a new image signed with the TLS key is refused, saying why" "$rc $out" ;;
esac
check "and that job did not start either" test ! -s "$TEST_TMP/counter4.log"
