# pgstream — one Makefile for two jobs:
#   * the PostgreSQL extension, built and installed with PGXS:  make && make install [&& make installcheck]
#   * the newcomer's entry points:                              make demo, make check
# The top-level goals below never include PGXS, whose own `check` target would clash with ours.

EXTENSION  = pgstream
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pgstream.control)

TOP_GOALS = check demo demo-kafka demo-webhooks deps shipper check-extension check-shipper check-differential check-sanitize bench format distclean-all

ifneq ($(filter $(TOP_GOALS),$(MAKECMDGOALS)),)

SHELL := /bin/bash
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BUILD ?= build

.PHONY: $(TOP_GOALS) extension-install

deps:
	scripts/install-deps.sh

# `make install` writes into PostgreSQL's own directories, hence sudo for a non-root user.
extension-install: deps
	$(MAKE) -j2 all
	$(SUDO) $(MAKE) install >/dev/null

shipper: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j2

check: extension-install shipper
	scripts/check.sh all

check-extension: extension-install
	scripts/check.sh extension

check-differential: extension-install
	scripts/check.sh differential

check-shipper: extension-install shipper
	scripts/check.sh shipper

demo-kafka: extension-install shipper
	scripts/demo-kafka.sh

demo-webhooks: extension-install shipper
	scripts/demo-webhooks.sh

check-sanitize: extension-install
	scripts/check.sh sanitize

demo: extension-install shipper
	scripts/demo.sh

bench: extension-install shipper
	bench/run.sh

format:
	find extension shipper bench -name '*.cpp' -o -name '*.h' -o -name '*.hpp' | xargs clang-format -i

distclean-all:
	rm -rf $(BUILD) $(BUILD)-sanitize results regression.diffs regression.out
	$(MAKE) clean

else

# ---- the extension (PGXS) ----
MODULE_big = pgstream
OBJS       = $(patsubst %.cpp,%.o,$(sort $(wildcard extension/*.cpp)))
PG_CONFIG ?= pg_config

# The install scripts are assembled from migrations/ (the single source of schema tracking) plus the SQL API: the
# current version's, and every released version's (migrations/RELEASES), so that `CREATE EXTENSION pgstream
# VERSION '0.1.0'` followed by `ALTER EXTENSION pgstream UPDATE` can be tested.
RELEASED   = $(shell awk '{ print $$1 }' migrations/RELEASES)
DATA_built = $(sort $(foreach version,$(EXTVERSION) $(RELEASED),sql/$(EXTENSION)--$(version).sql))
DATA       = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*--*.sql))
EXTRA_CLEAN = $(DATA_built)

REGRESS      = $(sort $(basename $(notdir $(wildcard regress/sql/*.sql))))
REGRESS_OPTS = --inputdir=regress --outputdir=regress

PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -fno-omit-frame-pointer
SHLIB_LINK  = -lstdc++

# No LLVM bitcode for JIT inlining: it needs clang and buys nothing for an output plugin.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies for C++: rebuild every object when any extension header changes.
$(OBJS): $(wildcard extension/*.h)

$(DATA_built): sql/$(EXTENSION)--%.sql: $(sort $(wildcard migrations/*.sql)) $(sort $(wildcard sql/api/*.sql)) migrations/RELEASES
	scripts/assemble-extension-sql.sh $* > $@

endif
