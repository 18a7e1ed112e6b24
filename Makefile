# gca: one build for every program, library, test and benchmark.
#
#   make            build everything into build/
#   make SAN=1      the same with ASan+UBSan, into build/san/
#   make test       build, then run every suite (tests/run); ends with "N passed, N failed"
#   make deps       install every package the build, tests and demo need (Debian 12 or 13)
#   make test-debian13  from a Debian 12 machine: make deps && make test inside a Debian 13 root
#   make install    honours PREFIX and DESTDIR
#
# Sources are found by folder (see docs/DESIGN.md, "Where the code lives"), so adding a file needs
# no edit here: common/ proto/ ldap/ form libgca.a; gcs/ cts/ ctl/ wrappers/ are the programs; cts/
# less its main is also libgca_cts.a, which the tests link.

.DEFAULT_GOAL := all
SHELL := /bin/bash

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/gca

CC ?= cc
# msgpack-c 6 (Debian 13, Ubuntu 24.04) ships msgpack-c.pc; msgpack-c 4 (Debian 12) msgpack.pc.
MSGPACK_PC := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS := ldap lber libevent libevent_openssl libevent_pthreads openssl $(MSGPACK_PC) uuid libzstd

ifeq ($(SAN),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
B := build
SANFLAGS :=
OPT := -O2
endif

GCA_CFLAGS := -std=c11 -Wall -Wextra -Wshadow -Wcast-qual -Werror -D_GNU_SOURCE -g $(OPT) $(SANFLAGS) -I. \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
GCA_LDFLAGS := $(SANFLAGS) $(LDFLAGS)
GCA_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# libgca.a: what every program shares.
LIB_SRCS := $(wildcard common/*.c proto/*.c ldap/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIBGCA := $(B)/libgca.a

# The job-side library for self-checkpointing (app core service) jobs.
APP_SRCS := $(wildcard wrappers/gca_app.c)
APP_OBJS := $(APP_SRCS:%.c=$(B)/obj/%.o)
LIBAPP := $(if $(APP_SRCS),$(B)/libgca_app.a)

# Programs: name -> sources. A program whose folder is still empty is not built.
GCS_SRCS := $(wildcard gcs/*.c)
# gca-cts is built once cts/cts.c (its main) exists.
CTS_MAIN := cts/cts.c
CTS_SRCS := $(if $(wildcard $(CTS_MAIN)),$(wildcard cts/*.c cts/core/*.c))
# libgca_cts.a: cts/ less its main, so that a test of a CTS part (test_image, test_vmm, ...) links
# the parts it calls without naming their objects. gca-cts itself links its objects directly.
CTS_LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(CTS_MAIN),$(CTS_SRCS)))
LIBCTS := $(if $(CTS_LIB_OBJS),$(B)/libgca_cts.a)
# libgca_gcs.a: gcs/ less its main, for the fuzz harnesses (tests/fuzz), as libgca_cts.a is for cts/.
GCS_LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(filter-out gcs/gcs.c,$(GCS_SRCS)))
CTL_SRCS := $(wildcard ctl/*.c)
VMM_WRAP := $(wildcard wrappers/vmm-ready-job-executor.c wrappers/vmm-ready-job-resumer.c wrappers/vmm_wrap.c)
WRAP_SHARED := $(filter-out wrappers/gca-exec.c wrappers/gca-recover.c wrappers/gca-criu-helper.c wrappers/gca_app.c $(VMM_WRAP),$(wildcard wrappers/*.c))
EXEC_SRCS := $(strip $(wildcard wrappers/gca-exec.c) $(if $(wildcard wrappers/gca-exec.c),$(WRAP_SHARED)))
RECOVER_SRCS := $(strip $(wildcard wrappers/gca-recover.c) $(if $(wildcard wrappers/gca-recover.c),$(WRAP_SHARED)))
# The VMM wrappers (issue 9): each its main, vmm_wrap.c and what every wrapper shares.
VEXEC_SRCS := $(if $(wildcard wrappers/vmm-ready-job-executor.c),wrappers/vmm-ready-job-executor.c wrappers/vmm_wrap.c $(WRAP_SHARED))
# The criu helper of ordinary users' jobs (docs/ARCHITECTURE.md, "The privilege line"): alone.
HELPER_SRCS := $(wildcard wrappers/gca-criu-helper.c)
VRES_SRCS := $(if $(wildcard wrappers/vmm-ready-job-resumer.c),wrappers/vmm-ready-job-resumer.c wrappers/vmm_wrap.c $(WRAP_SHARED))

PROGS := $(if $(GCS_SRCS),$(B)/gca-gcs) $(if $(CTS_SRCS),$(B)/gca-cts) $(if $(CTL_SRCS),$(B)/gca-ctl) \
	$(if $(EXEC_SRCS),$(B)/gca-exec) $(if $(RECOVER_SRCS),$(B)/gca-recover) \
	$(if $(HELPER_SRCS),$(B)/gca-criu-helper) \
	$(if $(VEXEC_SRCS),$(B)/vmm-ready-job-executor) $(if $(VRES_SRCS),$(B)/vmm-ready-job-resumer)

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)

# Tests: every tests/unit/test_*.c and tests/integration/test_*.c is one cmocka program.
TEST_SRCS := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
TESTS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_HELPER_SRCS := $(wildcard tests/lib/*.c)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(B)/obj/%.o)

# Benchmarks: every bench/*.c is one program; bench/lib/ is what they share.
BENCH_SRCS := $(wildcard bench/*.c)
BENCHES := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)
BENCH_LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(wildcard bench/lib/*.c))

HEADERS := $(wildcard */*.h cts/core/*.h tests/lib/*.h bench/lib/*.h)

.SECONDARY:
.PHONY: all test test-criu test-vmm test-debian13 bench fuzz deps deps-packages install demo demo-stop clean check-syntax
all: $(LIBGCA) $(LIBAPP) $(LIBCTS) $(PROGS) $(EXAMPLES) $(TESTS) $(BENCHES)

$(B)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(GCA_CFLAGS) -c $< -o $@

$(LIBGCA): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/libgca_app.a: $(APP_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libgca_cts.a: $(CTS_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libgca_gcs.a: $(GCS_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

define program
$(B)/$(1): $(2:%.c=$(B)/obj/%.o) $(LIBGCA)
	$$(CC) $$(GCA_LDFLAGS) -o $$@ $$^ $$(GCA_LIBS)
endef
$(eval $(call program,gca-gcs,$(GCS_SRCS)))
$(eval $(call program,gca-cts,$(CTS_SRCS)))
$(eval $(call program,gca-ctl,$(CTL_SRCS)))
$(eval $(call program,gca-exec,$(EXEC_SRCS)))
$(eval $(call program,gca-recover,$(RECOVER_SRCS)))
$(eval $(call program,gca-criu-helper,$(HELPER_SRCS)))
$(eval $(call program,vmm-ready-job-executor,$(VEXEC_SRCS)))
$(eval $(call program,vmm-ready-job-resumer,$(VRES_SRCS)))

$(B)/examples/%: $(B)/obj/examples/%.o $(LIBAPP) $(LIBGCA)
	@mkdir -p $(dir $@)
	$(CC) $(GCA_LDFLAGS) -o $@ $^ $(GCA_LIBS)

# A test links libgca_cts.a (before libgca.a, which it uses): only the CTS parts it calls.
$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_HELPER_OBJS) $(LIBCTS) $(LIBAPP) $(LIBGCA)
	@mkdir -p $(dir $@)
	$(CC) $(GCA_LDFLAGS) -o $@ $^ $(GCA_LIBS) $(CMOCKA_LIBS)

$(B)/tests/unit/test_vmm_wrap: $(B)/obj/tests/unit/test_vmm_wrap.o $(B)/obj/wrappers/vmm_wrap.o $(B)/obj/wrappers/wrapper.o $(TEST_HELPER_OBJS) $(LIBAPP) $(LIBGCA)
	@mkdir -p $(dir $@)
	$(CC) $(GCA_LDFLAGS) -o $@ $^ $(GCA_LIBS) $(CMOCKA_LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(BENCH_LIB_OBJS) $(TEST_HELPER_OBJS) $(LIBAPP) $(LIBGCA)
	@mkdir -p $(dir $@)
	$(CC) $(GCA_LDFLAGS) -o $@ $^ $(GCA_LIBS)

# make test: every suite, then one closing line "N passed, N failed". SAN=1 leaves the VM suites out.
test: all
	GCA_BUILD=$(B) GCA_SAN=$(SAN) tests/run

# The VM suites' figures go to $(B)/bench/ (criu-vm.json, vmm-vm.json), never into the sources.
test-criu: all
	GCA_BUILD=$(B) GCA_FIGURES_DIR=$(CURDIR)/$(B)/bench tests/run --only vm/criu

test-vmm: all
	GCA_BUILD=$(B) GCA_FIGURES_DIR=$(CURDIR)/$(B)/bench tests/run --only vm/vmm

# From a Debian 12 machine (as root): make deps && make test inside a Debian 13 root, made with
# debootstrap into build/debian13/root when missing; scripts/gca-debian13 says how it is entered.
test-debian13:
	scripts/gca-debian13 test

bench: all
	GCA_BUILD=$(B) bench/run

# Packages for the build, the tests and the demo, one list per release where names differ
# (docs/PLATFORMS.md). Debian 12 also gets what its qemu suites need (tests/vm: criu on Debian 12's
# kernel in a guest); Debian 13 what the native criu suite needs (crit is in python3-pycriu there).
# promtool (package prometheus) checks the metrics text in test_metrics.
# Does nothing when all are present; a package the release's apt sources lack names itself.
DEB_PKGS_COMMON := build-essential pkg-config clang libldap-dev slapd ldap-utils glue-schema libevent-dev libssl-dev \
	openssl libcmocka-dev uuid-dev uthash-dev criu libcap2-bin iproute2 procps psmisc kmod cpio xz-utils zstd libzstd-dev \
	python3 man-db rsync prometheus
DEB_PKGS_debian12 := $(DEB_PKGS_COMMON) libmsgpack-dev libclang-rt-14-dev qemu-system-x86 qemu-utils busybox-static \
	debootstrap
DEB_PKGS_debian13 := $(DEB_PKGS_COMMON) libmsgpack-c-dev libclang-rt-dev python3-pycriu
OS_RELEASE := $(shell . /etc/os-release 2>/dev/null && echo "$$ID$${VERSION_ID%%.*}")
# The system user gca-cts's network process runs as (cts.conf net_user, docs/DEPLOYMENT.md), made
# whether or not a package was missing: a machine whose packages came another way still needs it.
deps: deps-packages
	@getent passwd gca >/dev/null || { echo "deps: making the system user gca (gca-cts's network process runs as it)"; \
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gca; }

deps-packages:
	@pkgs='$(DEB_PKGS_$(OS_RELEASE))'; \
	if [ -z "$$pkgs" ]; then \
		echo "deps: no package list for '$(OS_RELEASE)' (/etc/os-release); make deps knows debian12 and debian13 (docs/PLATFORMS.md)" >&2; exit 1; \
	fi; \
	missing=$$(for p in $$pkgs; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all present ($(OS_RELEASE))"; exit 0; fi; \
	echo "deps ($(OS_RELEASE)): installing" $$missing; \
	apt-get update -q >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }; \
	bad=0; for p in $$missing; do \
		apt-cache show "$$p" >/dev/null 2>&1 || { echo "deps: package $$p: not in this machine's apt sources ($(OS_RELEASE))" >&2; bad=1; }; \
	done; [ $$bad = 0 ] || exit 1; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing

# What make install puts where; a program missing from the build fails it (nothing is skipped).
INSTALL_BIN := gca-ctl gca-exec gca-recover gca-criu-helper vmm-ready-job-executor vmm-ready-job-resumer
INSTALL_SBIN := gca-gcs gca-cts
install: all
	set -e; \
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(DATADIR)/schema; \
	install -m 0755 $(INSTALL_BIN:%=$(B)/%) scripts/gca-pki scripts/gca-site $(DESTDIR)$(BINDIR)/; \
	install -m 0755 $(INSTALL_SBIN:%=$(B)/%) $(DESTDIR)$(SBINDIR)/; \
	install -m 0644 $(B)/libgca_app.a $(DESTDIR)$(LIBDIR)/; \
	install -m 0644 wrappers/gca_app.h $(DESTDIR)$(INCDIR)/; \
	install -m 0644 schema/gca.schema schema/gca.ldif schema/glue-database.ldif $(DESTDIR)$(DATADIR)/schema/; \
	for sec in 1 3 5 8; do \
		install -d $(DESTDIR)$(MANDIR)/man$$sec; \
		install -m 0644 docs/man/*.$$sec $(DESTDIR)$(MANDIR)/man$$sec/; \
	done

# make demo: the whole story in ./run (scripts/gca-demo says each step); make demo-stop ends it.
demo: all
	GCA_BUILD=$(abspath $(B)) scripts/gca-demo run

demo-stop:
	scripts/gca-demo stop run

# make fuzz [FUZZ_SECONDS=60]: each libFuzzer harness of tests/fuzz in turn (tests/fuzz/Makefile).
fuzz:
	$(MAKE) -C tests/fuzz B=$(abspath build/fuzz)

# make faults: the fault campaign (tests/faults/campaign.sh) for FAULTS_MINUTES, stops, cuts and full
# disks of 20 s, 4 brokers, 8 jobs; logs and its table in $(B)/faults/ (docs/FAULTS.md). A short run
# of it is a suite of make test (tests/integration/faults.sh). The issue's goal, bounded by
# FAULTS_MINUTES: make faults FAULTS_UNTIL=gcs_kill=50,cts_kill=10,slapd_kill=5,acked=10000
# FAULTS_GAP=2 FAULTS_MINUTES=45 (it stops once every count is reached).
.PHONY: faults
FAULTS_MINUTES ?= 15
FAULTS_GAP ?= 4
FAULTS_UNTIL ?=
faults: all
	GCA_BUILD=$(abspath $(B)) tests/faults/campaign.sh --seconds $$(( $(FAULTS_MINUTES) * 60 )) \
		--hold 20 --gap $(FAULTS_GAP) --brokers 4 --jobs 2 --ldap-mb 512 --out $(B)/faults \
		$(if $(FAULTS_UNTIL),--until $(FAULTS_UNTIL))

# --one-file-system: nothing is mounted under build/debian13/root outside its own namespace, and
# should something be, rm stays off it.
clean:
	rm -rf --one-file-system build
