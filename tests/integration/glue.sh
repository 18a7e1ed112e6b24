# The GLUE 2.0 view (docs/GLUE.md), read as a grid broker reads it (plain ldapsearch under o=glue):
# gca-site makes o=glue with Debian's GLUE20.schema; the GCS publishes a GLUE2Service, a
# GLUE2Endpoint for itself and one per CTS; a CTS's HealthState changes with its gcaStatus, in the
# same step (written right after it); a retired CTS's endpoint goes; a dead GCS's entry ages out by
# its validity; only the GCS writes the tree; a replica carries it; a site made before GLUE gets it
# at its next `up` with its data kept.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || not_run glue "slapd is not installed"
[ -r /etc/ldap/schema/GLUE20.schema ] ||
	not_run glue "/etc/ldap/schema/GLUE20.schema is not installed (make deps: glue-schema)"
test_tmpdir
site=$TEST_TMP/site
replica=$TEST_TMP/replica
# Heartbeats every second, a CTS down after 3 s of silence, GLUE entries valid for 6 s.
export GCA_SITE_HEARTBEAT=1 GCA_SITE_CTS_TIMEOUT=3 GCA_SITE_GLUE_VALIDITY=6
on_exit "gca-site down $replica"
on_exit "gca-site down $site"
on_exit 'for p in ${STOPPED:-}; do kill -CONT $p; done'

# -- a site made before GLUE (no schema): the gca tree only; the next `up` adds GLUE, data kept --
check "gca-site up without the GLUE schema (a site made before GLUE)" \
	env GCA_GLUE_SCHEMA=/nonexistent/GLUE20.schema gca-site up "$site" --glue-domain testsite
. "$site/site.env"
check "and it said why there is no GLUE suffix" sh -c "env GCA_GLUE_SCHEMA=/nonexistent/GLUE20.schema gca-site up '$site' | grep -q 'apt-get install glue-schema'"
check "a class added before GLUE" sh -c ". '$site/admin.env'; gca-ctl --admin class add mpi ranks=many"
gcs_pid=$(cat "$site/gcs.pid")
check "gca-site up again (schema installed): the GLUE suffix is added" gca-site up "$site"
. "$site/site.env"
expect_eq "site.env names the GLUE base brokers search" "${GCA_GLUE_BASE:-}" "GLUE2GroupID=resource,o=glue"
[ "$(cat "$site/gcs.pid")" != "$gcs_pid" ] && pass "the running GCS was restarted with the GLUE settings" ||
	fail "the running GCS was restarted with the GLUE settings"
check "the gca tree kept its data (the class added before)" \
	sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=mpi,ou=classes,o=gca' -s base gcaProperty | grep -q 'ranks=many'"

# Helpers: what a broker reads. val FILTER ATTR: the attribute's values of the matching entries.
glue() { ldapsearch -x -LLL -o ldif-wrap=no -H "${URI:-$GCA_LDAP_URI}" -b o=glue "$@" 2>/dev/null; }
val() { glue "$1" "$2" | awk -v a="$2" 'index($0, a ": ") == 1 { print substr($0, length(a) + 3) }'; }
gcaval() { ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "$1" -s base "$2" 2>/dev/null |
	awk -v a="$2" 'index($0, a ": ") == 1 { print substr($0, length(a) + 3) }'; }
ep() { echo "(&(objectClass=GLUE2Endpoint)(GLUE2EntityName=$1))"; }
cts_dn() { echo "cn=$1,ou=cts,o=gca"; }

check "the GCS's endpoint appears" wait_for 10 sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b o=glue '$(ep gcs-1)' dn | grep -q ^dn"
check "the app CTS's endpoint appears" wait_for 10 sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b o=glue '$(ep cts-app)' dn | grep -q ^dn"
expect_eq "one GLUE2Service of type org.gca.checkpoint" \
	"$(val '(objectClass=GLUE2Service)' GLUE2ServiceType)" org.gca.checkpoint
expect_eq "its admin domain is the site's --glue-domain" \
	"$(val '(objectClass=GLUE2Service)' GLUE2ServiceAdminDomainForeignKey)" testsite
sid=$(val '(objectClass=GLUE2Service)' GLUE2ServiceID)
expect_eq "the service sits where BDII puts it (GLUE2GroupID=resource,o=glue)" \
	"$(glue '(objectClass=GLUE2Service)' dn | sed -n 's/^dn: //p')" "GLUE2ServiceID=$sid,GLUE2GroupID=resource,o=glue"

# -- what a broker runs to find a GCS (docs/GLUE.md), GLUE alone --
got=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b o=glue \
	'(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=org.gca.gcs)(GLUE2EndpointHealthState=ok))' \
	GLUE2EndpointURL | sed -n 's/^GLUE2EndpointURL: //p')
expect_eq "a broker finds the GCS through GLUE: its URL is the GCS endpoint" "$got" "gca://$GCA_GCS_ENDPOINT"
ca_subject=$(openssl x509 -in "$GCA_CA_FILE" -noout -subject -nameopt compat | sed 's/^subject=//')
expect_eq "the GCS endpoint's IssuerCA is the site CA's subject" "$(val "$(ep gcs-1)" GLUE2EndpointIssuerCA)" "$ca_subject"
expect_eq "and so is its TrustedCA" "$(val "$(ep gcs-1)" GLUE2EndpointTrustedCA)" "$ca_subject"
expect_eq "its interface version is the protocol's" "$(val "$(ep gcs-1)" GLUE2EndpointInterfaceVersion)" 1
expect_eq "its serving state is production" "$(val "$(ep gcs-1)" GLUE2EndpointServingState)" production
expect_eq "it is of the service (foreign key)" "$(val "$(ep gcs-1)" GLUE2EndpointServiceForeignKey)" "$sid"
expect_eq "it carries its validity" "$(val "$(ep gcs-1)" GLUE2EntityValidity)" 6

# -- a CTS of a class (docs/GLUE.md) --
got=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b o=glue \
	'(&(objectClass=GLUE2Endpoint)(GLUE2EndpointInterfaceName=org.gca.cts)(GLUE2EntityOtherInfo=Class=basic)(GLUE2EntityOtherInfo=CoreService=app)(GLUE2EndpointHealthState=ok))' \
	GLUE2EndpointURL | sed -n 's/^GLUE2EndpointURL: //p')
expect_eq "a broker finds the app CTS of class basic through GLUE" "$got" "gca://127.0.0.1:$(cat "$site/cts-app.port")"
criu_status=$(gcaval "$(cts_dn cts-criu)" gcaStatus)
if [ "$criu_status" = ok ]; then want=ok; else want=critical; fi
expect_eq "cts-criu's HealthState follows its gcaStatus ($criu_status)" "$(val "$(ep cts-criu)" GLUE2EndpointHealthState)" "$want"
[ "$criu_status" = ok ] || expect_eq "and its HealthStateInfo says why" "$(val "$(ep cts-criu)" GLUE2EndpointHealthStateInfo)" "$criu_status"

# -- a replica carries o=glue --
check "gca-site up --replica-of" gca-site up "$replica" --replica-of "$GCA_LDAP_URI" --replicator "$site/replicator.conf"
replica_uri=$(. "$replica/site.env"; echo "$GCA_LDAP_URI")
sorted() { ldapsearch -x -LLL -o ldif-wrap=no -H "$1" -b o=glue '(objectClass=*)' '*' entryCSN 2>/dev/null |
	awk 'BEGIN{RS=""} {print}' | sort; }
same_glue() { [ -n "$(sorted "$replica_uri")" ] && [ "$(sorted "$GCA_LDAP_URI")" = "$(sorted "$replica_uri")" ]; }
check "the replica's o=glue equals the provider's" wait_for 15 same_glue
gdn=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf"); gpw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
# a simple bind needs TLS (StartTLS, -ZZ) with the CA checked: docs/DEPLOYMENT.md, "TLS to the directory"
out=$(LDAPTLS_CACERT=$(. "$replica/site.env"; echo "$GCA_LDAP_CA_FILE") \
    ldapmodify -x -ZZ -H "$replica_uri" -D "$gdn" -w "$gpw" 2>&1 <<LDIF
dn: GLUE2GroupID=resource,o=glue
changetype: modify
replace: GLUE2EntityName
GLUE2EntityName: x
LDIF
); rc=$?
expect_eq "a write to the replica's o=glue, even as the GCS, gets a referral (LDAP 10)" "$rc" 10
case "$out" in *"$GCA_LDAP_URI"*) pass "the referral names the provider" ;; *) fail "the referral names the provider" "$out" ;; esac

# -- only the GCS identity writes o=glue --
out=$(ldapmodify -x -H "$GCA_LDAP_URI" 2>&1 <<LDIF
dn: $(glue "$(ep cts-app)" dn | sed -n 's/^dn: //p')
changetype: modify
replace: GLUE2EndpointHealthState
GLUE2EndpointHealthState: critical
LDIF
); rc=$?
[ $rc -ne 0 ] && pass "an anonymous write to o=glue is refused (rc $rc)" || fail "an anonymous write to o=glue is refused"
rdn=$(awk '$1=="binddn"{print $2}' "$site/replicator.conf"); rpw=$(awk '$1=="password"{print $2}' "$site/replicator.conf")
out=$(LDAPTLS_CACERT=$GCA_LDAP_CA_FILE ldapmodify -x -ZZ -H "$GCA_LDAP_URI" -D "$rdn" -w "$rpw" 2>&1 <<LDIF
dn: $(glue "$(ep cts-app)" dn | sed -n 's/^dn: //p')
changetype: modify
replace: GLUE2EndpointHealthState
GLUE2EndpointHealthState: critical
LDIF
); rc=$?
expect_eq "the replicator reads o=glue but may not write it (LDAP 50)" "$rc" 50

# -- a CTS stops heartbeating: gcaStatus down and HealthState unknown in the same step --
# The GLUE entry is written right after the gcaStatus, on the GCS's directory thread: its entryCSN
# is the next one (the two suffixes are two databases of one slapd and one clock).
csn() { glue "$1" entryCSN | sed -n 's/^entryCSN: //p'; }
gcacsn() { ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b "$1" -s base entryCSN 2>/dev/null | sed -n 's/^entryCSN: //p'; }
csn_s() { echo "${1:0:14}" | sed -E 's/(....)(..)(..)(..)(..)(..)/\1-\2-\3 \4:\5:\6/' | xargs -I{} date -u -d {} +%s; }
# watch STATUS HEALTH: poll until the CTS entry says STATUS; then the GLUE entry must say HEALTH
# within a second, with an entryCSN after the CTS entry's and less than a second later.
watch_step() {
	local want=$1 health=$2 seen= i h
	for i in $(seq 200); do
		[ "$(gcaval "$(cts_dn cts-app)" gcaStatus)" = "$want" ] && { seen=1; break; }
		sleep 0.1
	done
	[ -n "$seen" ] || { fail "cts-app's gcaStatus becomes $want" "$(gcaval "$(cts_dn cts-app)" gcaStatus)"; return; }
	pass "cts-app's gcaStatus becomes $want"
	for i in $(seq 10); do
		h=$(val "$(ep cts-app)" GLUE2EndpointHealthState)
		[ "$h" = "$health" ] && break
		sleep 0.1
	done
	expect_eq "and within a second its GLUE HealthState is $health" "$h" "$health"
	local a b
	a=$(gcacsn "$(cts_dn cts-app)") b=$(csn "$(ep cts-app)")
	[[ "$b" > "$a" ]] && pass "the GLUE write ($b) comes right after the gcaStatus write ($a)" ||
		fail "the GLUE write comes after the gcaStatus write" "glue $b, cts $a"
	[ $(( $(csn_s "$b") - $(csn_s "$a") )) -le 1 ] && pass "in the same step (less than a second apart)" ||
		fail "in the same step" "glue $b, cts $a"
}
cts_pid=$(cat "$site/cts-app.pid")
STOPPED="$cts_pid $(pgrep -P "$cts_pid" | tr '\n' ' ')"
kill -STOP $STOPPED
watch_step down unknown
expect_eq "ServingState closed while down" "$(val "$(ep cts-app)" GLUE2EndpointServingState)" closed
case "$(val "$(ep cts-app)" GLUE2EndpointHealthStateInfo)" in down*) pass "HealthStateInfo says down" ;;
	*) fail "HealthStateInfo says down" "$(val "$(ep cts-app)" GLUE2EndpointHealthStateInfo)" ;; esac
n=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b o=glue \
	'(&(objectClass=GLUE2Endpoint)(GLUE2EntityOtherInfo=CoreService=app)(GLUE2EndpointHealthState=ok))' dn | grep -c '^dn:' || true)
expect_eq "a broker's search for a healthy app CTS finds none now" "$n" 0
# -- back up --
kill -CONT $STOPPED
STOPPED=
watch_step ok ok
expect_eq "ServingState production again" "$(val "$(ep cts-app)" GLUE2EndpointServingState)" production
check "the replica followed (HealthState ok there too)" wait_for 15 sh -c "ldapsearch -x -LLL -H '$replica_uri' -b o=glue '(&$(ep cts-app)(GLUE2EndpointHealthState=ok))' dn | grep -q ^dn"

# -- refreshed every validity/2 (3 s), not on every heartbeat --
t1=$(val "$(ep gcs-1)" GLUE2EntityCreationTime)
# Over 4 s of heartbeats (one a second) cts-app's entry is rewritten by the refresh alone (every
# 3 s: at most 2 changes), never once a beat (4 or more).
prev=$(csn "$(ep cts-app)") changes=0
for i in $(seq 20); do
	sleep 0.2
	now=$(csn "$(ep cts-app)")
	[ "$now" = "$prev" ] || changes=$((changes + 1))
	prev=$now
done
[ "$changes" -le 2 ] && pass "4 s of heartbeats rewrote cts-app's GLUE entry $changes times (the refresh, not the beats)" ||
	fail "heartbeats are not directory writes" "$changes changes of cts-app's GLUE entry in 4 s"
check "the GCS renews its entry's creation time within its validity" \
	wait_for 6 sh -c "[ \"\$(ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b o=glue '$(ep gcs-1)' GLUE2EntityCreationTime | sed -n 's/^GLUE2EntityCreationTime: //p')\" != '$t1' ]"

# -- a retired CTS: its endpoint goes --
check "an admin retires cts-criu" sh -c ". '$site/admin.env'; gca-ctl --admin cts remove cts-criu"
expect_eq "its gcaStatus is retired" "$(gcaval "$(cts_dn cts-criu)" gcaStatus)" retired
expect_eq "and its GLUE endpoint is gone" "$(glue "$(ep cts-criu)" dn)" ""

# -- a GCS that dies: nobody rewrites its entry, a reader sees it age out --
# fresh NAME: CreationTime + Validity is still ahead (what a broker checks).
fresh() {
	local t v
	t=$(val "$(ep "$1")" GLUE2EntityCreationTime) v=$(val "$(ep "$1")" GLUE2EntityValidity)
	[ -n "$t" ] && [ $(( $(date -u -d "$t" +%s) + v )) -ge "$(date +%s)" ]
}
check "the GCS's entry is fresh while it runs" fresh gcs-1
kill -9 "$(cat "$site/gcs.pid")"
sleep 8
expect_eq "a killed GCS's entry still says ok (nobody rewrote it)" "$(val "$(ep gcs-1)" GLUE2EndpointHealthState)" ok
if fresh gcs-1; then fail "but it is stale by its validity"; else pass "but it is stale by its validity"; fi
check "gca-site up brings the GCS back" gca-site up "$site"
check "its entry is fresh again" wait_for 5 fresh gcs-1

# -- a clean stop says so --
kill -TERM "$(cat "$site/gcs.pid")"
check "a GCS stopped cleanly: ServingState closed" wait_for 5 sh -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b o=glue '(&$(ep gcs-1)(GLUE2EndpointServingState=closed)(GLUE2EndpointHealthStateInfo=stopped))' dn | grep -q ^dn"
check "the replica's o=glue equals the provider's at the end" wait_for 15 same_glue

# -- a slapd configured with cn=config (Debian's own): the same suffix from schema/ (docs/GLUE.md) --
cfg=$TEST_TMP/cnconfig
mkdir -p "$cfg/slapd.d" "$cfg/glue"
chmod 0700 "$cfg/glue"
operator="gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth"
cat > "$cfg/boot.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
pidfile $cfg/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
database config
access to * by dn.exact="$operator" manage by * none
CONF
check "a slapd with cn=config and no GLUE (slaptest -F)" slaptest -f "$cfg/boot.conf" -F "$cfg/slapd.d"
cfg_uri="ldapi://$(echo "$cfg/ldapi" | sed 's|/|%2F|g')"
slapd -F "$cfg/slapd.d" -h "$cfg_uri" -d 0 >"$cfg/slapd.log" 2>&1 &
cfg_pid=$!
on_exit "kill $cfg_pid"
check "it starts" wait_for 10 ldapsearch -Q -Y EXTERNAL -H "$cfg_uri" -b cn=config -s base dn
check "GLUE20.schema loads into cn=config (schema/schema2ldif | ldapadd)" \
	sh -c "'$GCA_TOP/schema/schema2ldif' /etc/ldap/schema/GLUE20.schema | ldapadd -Q -Y EXTERNAL -H '$cfg_uri'"
check "schema/glue-database.ldif adds the o=glue database" \
	sh -c "sed -e 's|@DIRECTORY@|$cfg/glue|' -e 's|@GCS_DN@|cn=gcs-directory,o=gca|' -e 's|@REPL_DN@|cn=replicator,o=gca|' -e 's|@OPERATOR_DN@|$operator|' '$GCA_TOP/schema/glue-database.ldif' | ldapadd -Q -Y EXTERNAL -H '$cfg_uri'"
db=$(ldapsearch -Q -LLL -Y EXTERNAL -H "$cfg_uri" -b cn=config '(olcSuffix=o=glue)' dn | sed -n 's/^dn: //p')
check "with syncprov, for replicas" sh -c "ldapadd -Q -Y EXTERNAL -H '$cfg_uri' <<LDIF
dn: olcOverlay=syncprov,$db
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: syncprov
olcSpCheckpoint: 100 10
olcSpSessionLog: 10000
LDIF"
check "the operator seeds GLUE2GroupID=resource,o=glue" sh -c "ldapadd -Q -Y EXTERNAL -H '$cfg_uri' <<LDIF
dn: o=glue
objectClass: organization
o: glue

dn: GLUE2GroupID=resource,o=glue
objectClass: GLUE2Group
GLUE2GroupID: resource
LDIF"
check "anyone reads it" sh -c "ldapsearch -x -LLL -H '$cfg_uri' -b GLUE2GroupID=resource,o=glue -s base GLUE2GroupID | grep -q '^GLUE2GroupID: resource'"
out=$(ldapadd -x -H "$cfg_uri" 2>&1 <<LDIF
dn: GLUE2GroupID=evil,o=glue
objectClass: GLUE2Group
GLUE2GroupID: evil
LDIF
); rc=$?
[ $rc -ne 0 ] && pass "nobody else writes it (rc $rc)" || fail "nobody else writes it"
done_testing
