/*
 * tests/fuzz: what the harnesses share. fake_dir.c is the directory they run on
 * (docs/ARCHITECTURE.md, "Fuzzing"); fuzz_server.c feeds bytes through the real proto_conn into
 * the servers' tables.
 */
#ifndef GCA_FUZZ_H
#define GCA_FUZZ_H

#include "ldap/gca_ldap.h"
#include "proto/proto.h"

/* fake_dir.c: every operation answers s from now on (DIR_OK: from the in-memory tree). */
void fake_dir_fail(enum dir_status s);
/* An empty tree, answering from it. */
void fake_dir_reset(void);

#endif
