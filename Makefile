# Wattline — build, run and test.  `make run` and `make test` install what is
# missing first (tools/deps.sh), then re-enter make so pkg-config sees it.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

PKGS     := libmicrohttpd libwebsockets libpq jansson libjwt openssl librabbitmq libcurl zlib
SIM_PKGS := libcurl jansson librabbitmq libmosquitto

# The server's layers, lowest first. A layer may include headers of the layers
# before it and of itself (tools/layers.sh checks it in `make lint`), and is
# compiled with only the libraries named here for it.
LAYERS         := base db auth ingest api broker notify live handlers server
PKGS_base      := openssl jansson
PKGS_db        := libpq jansson
PKGS_auth      := openssl libjwt jansson
PKGS_ingest    := jansson
PKGS_broker    := librabbitmq jansson
# zlib: the archives of retired months (api/archive.c).
PKGS_api       := jansson zlib
# notify/ owns libcurl: the one layer that makes outbound HTTP requests (webhooks).
PKGS_notify    := libcurl jansson
PKGS_live      := jansson
PKGS_handlers  := jansson
PKGS_server    := libmicrohttpd libwebsockets jansson
# The compile flags of the layer a source file (or its object) belongs to.
layer_of       = $(firstword $(subst /, ,$(1)))
layer_cflags   = $(shell pkg-config --cflags $(PKGS_$(call layer_of,$(1))))

WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Werror
CSTD     := -std=c17 -D_GNU_SOURCE
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDHARDEN := -pie -Wl,-z,relro,-z,now

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread -lm

SERVER_SRC := $(filter-out server/main.c,$(foreach l,$(LAYERS),$(wildcard $(l)/*.c)))
SERVER_HDR := $(foreach l,$(LAYERS),$(wildcard $(l)/*.h))
SIM_SRC    := $(wildcard tools/sim/*.c)
# The server's modules the simulator links: one date arithmetic and one clock for both.
SIM_BASE   := base/timefmt.c base/clock.c
BENCH_SRC  := $(wildcard tools/bench/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

# Release objects (bin/) and sanitizer objects (build/asan/) live apart.
REL_OBJ  := $(SERVER_SRC:%.c=build/rel/%.o)
ASAN_OBJ := $(SERVER_SRC:%.c=build/asan/%.o)
SIM_REL_OBJ  := $(SIM_SRC:%.c=build/rel/%.o) $(SIM_BASE:%.c=build/rel/%.o)
SIM_ASAN_OBJ := $(filter-out build/asan/tools/sim/main.o,$(SIM_SRC:%.c=build/asan/%.o)) \
                $(SIM_BASE:%.c=build/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

# libFuzzer targets (tests/fuzz/fuzz_<name>.c, corpora in tests/fuzz/corpus/<name>/): the
# server's objects built apart with clang (build/fuzz/), instrumented for coverage and
# checked by ASan+UBSan.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN     := $(FUZZ_NAMES:%=build/fuzz/bin/fuzz_%)
FUZZ_OBJ     := $(SERVER_SRC:%.c=build/fuzz/%.o)

REL_CFLAGS  := $(CSTD) $(WARN) -O2 -g $(HARDEN) -MMD -MP
ASAN_CFLAGS := $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined -MMD -MP
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -MMD -MP

# drills: fault drills (tests/drills/): kill -9 of the server and of PostgreSQL under
# load, a negative control that must see acknowledged readings lost, a soak under
# ASan/LSan (SOAK_SECONDS, default 180). Minutes, not seconds: `make check` skips them.
.PHONY: all deps run run-broker test check unit api broker-tests drills e2e lint lint-openapi docker-check format install \
        clean certs bench fuzz fuzz-build fuzz-replay fuzz-merge

all: bin/wattline bin/wattline-sim

bin/wattline: $(REL_OBJ) build/rel/server/main.o
	@mkdir -p $(@D)
	$(CC) $(LDHARDEN) -o $@ $^ $(PKG_LIBS)

bin/wattline-sim: $(SIM_REL_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDHARDEN) -o $@ $^ $(shell pkg-config --libs $(SIM_PKGS)) -lm

build/rel/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(shell pkg-config --cflags $(SIM_PKGS)) -c -o $@ $<

build/rel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(call layer_cflags,$<) -c -o $@ $<

build/asan/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(shell pkg-config --cflags $(SIM_PKGS)) -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(call layer_cflags,$<) -c -o $@ $<

build/asan/libwattline.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/asan/libsim.a: $(SIM_ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/asan/wattline: $(ASAN_OBJ) build/asan/server/main.o
	$(CC) -fsanitize=address,undefined -o $@ $^ $(PKG_LIBS)

# The simulator's tests (test_sim, test_sim_*) link the simulator; every other test links
# the server.
build/asan/tests/test_sim: tests/unit/test_sim.c build/asan/libsim.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -Itools/sim $(shell pkg-config --cflags cmocka $(SIM_PKGS)) -o $@ $< \
	  build/asan/libsim.a $(shell pkg-config --libs cmocka $(SIM_PKGS)) -lm

build/asan/tests/test_sim_%: tests/unit/test_sim_%.c build/asan/libsim.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -Itools/sim $(shell pkg-config --cflags cmocka $(SIM_PKGS)) -o $@ $< \
	  build/asan/libsim.a $(shell pkg-config --libs cmocka $(SIM_PKGS)) -lm

build/asan/tests/%: tests/unit/%.c build/asan/libwattline.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(PKG_CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< \
	  build/asan/libwattline.a $(PKG_LIBS) $(shell pkg-config --libs cmocka)

build/fuzz/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(call layer_cflags,$<) -c -o $@ $<

build/fuzz/libwattline.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/bin/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libwattline.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< \
	  build/fuzz/libwattline.a $(PKG_LIBS)

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d) $(SIM_REL_OBJ:.o=.d) $(SIM_ASAN_OBJ:.o=.d) \
  build/rel/server/main.d build/asan/server/main.d build/asan/tools/sim/main.d

deps:
	@tools/deps.sh all

run:
	@tools/deps.sh run
	@$(MAKE) --no-print-directory all
	@tools/run.sh

# make run plus a private RabbitMQ node (tools/rabbitmq.sh, data in var/rabbitmq): AMQP and
# MQTT ingestion, the broker's logins checked by this server.
run-broker:
	@tools/deps.sh broker
	@$(MAKE) --no-print-directory all
	@tools/run.sh --broker

# Everything CI runs: the lint of the C sources and the OpenAPI file, the
# Docker files' checks, unit tests under sanitizers, the API and WebSocket
# tests (the topology test runs nginx with docker/nginx.conf), the browser tests.
test:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory all build/asan/wattline $(UNIT_BIN) $(FUZZ_BIN)
	@$(MAKE) --no-print-directory lint docker-check unit fuzz-replay api broker-tests drills e2e

# The edit loop: lint, the unit tests and the API tests (no browser, no
# drills, no broker); a few minutes.
check:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory all build/asan/wattline $(UNIT_BIN) $(FUZZ_BIN)
	@$(MAKE) --no-print-directory lint unit fuzz-replay api

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Every fuzz target over its committed corpus, once per input (a few seconds): what the
# fuzzers found stays fixed.
fuzz-replay: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_NAMES); do echo "== fuzz_$$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	  build/fuzz/bin/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t 2>build/fuzz/replay_$$t.log || \
	  { cat build/fuzz/replay_$$t.log; exit 1; }; done

fuzz-build: $(FUZZ_BIN)

# Each target for FUZZ_SECONDS, one after the other. New inputs go to build/fuzz/corpus/<name>/
# (the committed corpus is only read); `make fuzz-merge` keeps those that add coverage.
fuzz: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_NAMES); do echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/crashes/$$t; \
	  build/fuzz/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$t/ build/fuzz/corpus/$$t tests/fuzz/corpus/$$t; done

fuzz-merge: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_NAMES); do mkdir -p build/fuzz/corpus/$$t; \
	  build/fuzz/bin/fuzz_$$t -merge=1 tests/fuzz/corpus/$$t build/fuzz/corpus/$$t; done

api: build/asan/wattline bin/wattline-sim
	cd tests && WATTLINE_BIN=$(CURDIR)/build/asan/wattline node --test --test-concurrency=1 api/

# The tests that run a private RabbitMQ node (tests/broker/): the consumer, MQTT logins
# through the HTTP auth backend, the simulator's broker modes. About 10 s per node.
broker-tests: build/asan/wattline bin/wattline-sim
	cd tests && WATTLINE_BIN=$(CURDIR)/build/asan/wattline node --test --test-concurrency=1 broker/

drills: build/asan/wattline bin/wattline-sim
	cd tests && WATTLINE_BIN=$(CURDIR)/build/asan/wattline node --test --test-concurrency=1 drills/

e2e: build/asan/wattline
	cd tests && WATTLINE_BIN=$(CURDIR)/build/asan/wattline node --test --test-concurrency=1 e2e/

lint: lint-openapi
	tools/layers.sh
	clang-format --dry-run --Werror $(SERVER_SRC) server/main.c $(SIM_SRC) $(BENCH_SRC) $(UNIT_SRC) \
	  $(FUZZ_SRC) $(SERVER_HDR) $(wildcard tools/sim/*.h)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=ctuuninitvar \
	  --std=c11 -D_GNU_SOURCE $(SERVER_SRC) server/main.c $(SIM_SRC) $(BENCH_SRC) $(FUZZ_SRC)

# The Docker files, checked with what runs without a Docker engine (the build
# commands themselves ran above: `make all`).
docker-check:
	tools/docker-check.sh --no-build

lint-openapi:
	cd tests && npx --no-install redocly lint ../docs/openapi.json --config redocly.yaml

format:
	clang-format -i $(SERVER_SRC) server/main.c $(SIM_SRC) $(BENCH_SRC) $(UNIT_SRC) \
	  $(FUZZ_SRC) $(SERVER_HDR) $(wildcard tools/sim/*.h)

certs:
	@tools/certs.sh

# Installs what it needs first, as `make test` does: wrk, PostgreSQL's clients, RabbitMQ
# (the broker scenario), node and tests/node_modules (ws, amqplib).
bench:
	@tools/deps.sh test
	@tools/bench/run.sh

install: bin/wattline bin/wattline-sim
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/wattline
	install -m 0755 bin/wattline bin/wattline-sim $(DESTDIR)$(PREFIX)/bin/
	cp -R web migrations $(DESTDIR)$(PREFIX)/share/wattline/
	install -m 0644 docs/openapi.json $(DESTDIR)$(PREFIX)/share/wattline/

clean:
	rm -rf build bin
