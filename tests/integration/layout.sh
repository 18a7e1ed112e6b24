# The code's shape (issue 19, docs/ARCHITECTURE.md "Where the code lives"): each program's files
# call one another one way (scripts/gca-callgraph finds no cycle between files), and every source
# file is named in docs/ARCHITECTURE.md's map, so the map and the tree cannot drift apart unseen.
# timeout: 60
. "$GCA_TOP/tests/lib.sh"
cd "$GCA_TOP" || exit 1
command -v python3 >/dev/null || not_run layout "python3 is not installed (scripts/gca-callgraph needs it)"
for folders in cts gcs ldap ctl wrappers "proto common"; do
	# shellcheck disable=SC2086 # two folders are one program's library
	out=$(scripts/gca-callgraph $folders 2>&1); rc=$?
	case "$rc $(echo "$out" | tail -1)" in
	"0 cycles: none among 0 "*) fail "$folders: no cycle between files" "no source file found there" ;;
	"0 cycles: none among "*) pass "$folders: no cycle between files ($(echo "$out" | tail -1 | sed 's/cycles: none among //'))" ;;
	*) fail "$folders: no cycle between files" "$(echo "$out" | sed -n '/^cycles:/,$p' | head -8 | tr '\n' ' ')" ;;
	esac
done
missing=
for f in $(git ls-files 'gcs/*.c' 'cts/*.c' 'proto/*.c' 'common/*.c' 'wrappers/*.c' 'ctl/*.c' 'ldap/*.c' 2>/dev/null ||
    ls gcs/*.c cts/*.c cts/core/*.c proto/*.c common/*.c wrappers/*.c ctl/*.c ldap/*.c); do
	grep -qF "$(basename "$f")" docs/ARCHITECTURE.md || missing="$missing $f"
done
expect_eq "every source file is named in docs/ARCHITECTURE.md" "${missing:-none}" none
done_testing
