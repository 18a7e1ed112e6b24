# criu-user-zstd: tests/native/criu_user.sh on a site whose CTSes compress their images
# (compress zstd): an ordinary user's restore gets a copy verified, then decompressed, then lent.
# timeout: 240
CRIU_USER_COMPRESS=1 . "$GCA_TOP/tests/native/criu_user.sh"
