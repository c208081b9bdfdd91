# hawk-bpf build, modelled on libbpf-bootstrap: vmlinux.h from the running
# kernel's BTF, BPF objects with clang, skeletons with bpftool, user space
# linked against Debian's libbpf.
OUT       := build
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PREFIX    ?= /usr/local
# Debian's python3 carries pytest (python3-pytest); a pyenv python3 may not.
PYTEST    ?= /usr/bin/python3 -m pytest
PKGS      := libbpf libelf zlib jansson capstone libdw libmicrohttpd libprotobuf-c
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
             -Iinclude -Iuser $(addprefix -I,$(wildcard user/*/)) -I$(OUT) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Iinclude -I$(OUT) \
              -Wall -Wno-unused-function

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
SKELS     := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
# user/ has a folder per pipeline stage: target (finding the interpreter),
# pyver (the version layer), plan, inject (every write into the target),
# capture (BPF), symbolize, aggregate, render, cli.
LIB_SRCS  := $(filter-out user/cli/main.c,$(wildcard user/*/*.c))
LIB_OBJS  := $(patsubst user/%.c,$(OUT)/user/%.o,$(LIB_SRCS))
# C for proto/*.proto by protoc-c (the pprof format, user/render/pprof.c).
PROTOS    := $(wildcard proto/*.proto)
PB_HDRS   := $(patsubst proto/%.proto,$(OUT)/%.pb-c.h,$(PROTOS))
PB_OBJS   := $(patsubst proto/%.proto,$(OUT)/%.pb-c.o,$(PROTOS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst tests/unit/%.c,$(OUT)/unit/%.o,$(UNIT_SRCS))
HEADERS   := $(wildcard include/*.h user/*/*.h bpf/*.h tests/unit/*.h)

# What reads files a user hands hawk-bpf (pickles, source files) and what
# renders them, also built by clang with ASan and UBSan, every report fatal
# (NULL + 0 and the like are silent in the plain build): its unit tests
# run again that way, and the fuzz harness (tests/fuzz/) links it.
SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
SAN_CFLAGS := -O1 -g $(filter-out -O% -g,$(CFLAGS))
SAN_LIB   := $(addprefix user/render/,pickle_read.c pickle_map.c pickle_utf8.c \
             pickle_write.c format.c report.c report_dump.c) user/aggregate/stats.c \
             user/aggregate/series.c user/aggregate/u64map.c user/render/svg.c \
             user/render/timeseries.c \
             user/symbolize/source.c user/symbolize/creds.c
SAN_UNIT  := $(addprefix tests/unit/,oracle.c test_pickle.c test_format.c \
             test_stats.c test_weights.c test_report.c test_source.c \
             test_bigsizes.c test_series.c test_svg.c test_timeseries.c)
# The pprof writer and merger (which reads profiles users hand it) and
# their tests, sanitized too, stay out of SAN_LIB: the pickle fuzz harness
# links that without protoc-c's code.
SAN_PPROF := user/render/pprof.c user/render/pprof_merge.c tests/unit/test_pprof.c \
             tests/unit/test_pprof_merge.c
SAN_OBJS  := $(patsubst %.c,$(OUT)/san/%.o,$(SAN_LIB) $(SAN_UNIT) $(SAN_PPROF)) \
             $(patsubst proto/%.proto,$(OUT)/san/pb/%.pb-c.o,$(PROTOS))
# ASan's leak check in Criterion's workers would flag what a failed
# assertion leaves; leaks are the fuzz harness's to find.
SAN_ENV   := ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
             UBSAN_OPTIONS=print_stacktrace=1

.PHONY: all deps install uninstall test unit e2e sid demo bench clean fuzz fuzz-build
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUT)/hawk-bpf

deps:
	@sh scripts/install-deps

$(OUT) $(OUT)/user $(OUT)/unit:
	@mkdir -p $@

$(OUT)/vmlinux.h: | $(OUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(OUT)/vmlinux.h $(HEADERS) | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@

# One run of protoc-c makes both files (a pattern rule's targets are made
# together).
$(OUT)/%.pb-c.c $(OUT)/%.pb-c.h: proto/%.proto | $(OUT)
	protoc-c --c_out=$(OUT) --proto_path=proto $<

$(OUT)/%.pb-c.o: $(OUT)/%.pb-c.c $(PB_HDRS)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/user/%.o: user/%.c $(HEADERS) $(SKELS) $(PB_HDRS) | $(OUT)/user
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# Rebuilt from scratch so objects of removed sources never linger.
$(OUT)/libhawk.a: $(LIB_OBJS) $(PB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(OUT)/hawk-bpf: $(OUT)/user/cli/main.o $(OUT)/libhawk.a
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/unit/%.o: tests/unit/%.c $(HEADERS) $(PB_HDRS) | $(OUT)/unit
	$(CC) $(CFLAGS) -Itests/unit -c $< -o $@

$(OUT)/unit-tests: $(UNIT_OBJS) $(OUT)/libhawk.a
	$(CC) $(CFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(OUT)/san/%.o: %.c $(HEADERS) $(PB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -DHK_SANITIZED -Itests/unit -c $< -o $@

$(OUT)/san/pb/%.pb-c.o: $(OUT)/%.pb-c.c $(PB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -c $< -o $@

$(OUT)/unit-tests-san: $(SAN_OBJS)
	$(CLANG) $(SAN) $^ $(LDLIBS) -lcriterion -o $@

# The fuzz harnesses (tests/fuzz/README.md): the same sources instrumented
# for libFuzzer; the pickle reader's seeds and regression inputs made by
# tracemalloc's Python, the pprof merger's by hk_pprof_write.
FUZZ_OBJS := $(patsubst %.c,$(OUT)/fuzz/%.o,$(SAN_LIB))
FUZZ_PPROF_OBJS := $(patsubst %.c,$(OUT)/fuzz/%.o,$(filter user/%,$(SAN_PPROF))) \
             $(patsubst proto/%.proto,$(OUT)/fuzz/pb/%.pb-c.o,$(PROTOS))

$(OUT)/fuzz/%.o: %.c $(HEADERS) $(PB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUT)/fuzz/pb/%.pb-c.o: $(OUT)/%.pb-c.c $(PB_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUT)/fuzz/pickle_read_fuzz: tests/fuzz/pickle_read_fuzz.c $(FUZZ_OBJS) $(HEADERS)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -fsanitize=fuzzer $< $(FUZZ_OBJS) $(LDLIBS) -o $@

$(OUT)/fuzz/pprof_merge_fuzz: tests/fuzz/pprof_merge_fuzz.c $(FUZZ_PPROF_OBJS) $(HEADERS)
	$(CLANG) $(SAN_CFLAGS) $(SAN) -fsanitize=fuzzer $< $(FUZZ_PPROF_OBJS) $(LDLIBS) -o $@

$(OUT)/fuzz/seeds/.made: tests/fuzz/seeds.py tests/fuzz/regressions.txt
	rm -rf $(OUT)/fuzz/seeds $(OUT)/fuzz/regress
	/usr/bin/python3.11 tests/fuzz/seeds.py $(OUT)/fuzz/seeds $(OUT)/fuzz/regress
	touch $@

$(OUT)/fuzz/pprof-seeds/.made: $(OUT)/fuzz/pprof_merge_fuzz tests/fuzz/pprof_regressions.txt
	rm -rf $(OUT)/fuzz/pprof-seeds
	mkdir -p $(OUT)/fuzz/pprof-seeds
	HK_FUZZ_SEEDS=$(OUT)/fuzz/pprof-seeds HK_FUZZ_REGRESS=tests/fuzz/pprof_regressions.txt \
		$(OUT)/fuzz/pprof_merge_fuzz
	touch $@

fuzz-build: $(OUT)/fuzz/pickle_read_fuzz $(OUT)/fuzz/seeds/.made \
            $(OUT)/fuzz/pprof_merge_fuzz $(OUT)/fuzz/pprof-seeds/.made

# A brief run of each harness (make test's); scripts/fuzz SECONDS for a
# longer one.
FUZZ_SECONDS ?= 20
fuzz: fuzz-build
	@OUT=$(OUT) sh scripts/fuzz $(FUZZ_SECONDS)

install: $(OUT)/hawk-bpf
	install -D -m 0755 $(OUT)/hawk-bpf $(DESTDIR)$(PREFIX)/sbin/hawk-bpf

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/hawk-bpf

# Unit tests compare against the real CPython: fixtures are generated by
# /usr/bin/python3.11 at test time, never checked in.
unit: $(OUT)/unit-tests $(OUT)/unit-tests-san sid
	HAWK_PYTHON=/usr/bin/python3.11 $(OUT)/unit-tests --jobs 1
	HAWK_PYTHON=/usr/bin/python3.11 $(SAN_ENV) $(OUT)/unit-tests-san --jobs 1

# The sid chroot of test interpreters (python3.13-3.15 of Debian sid, with
# their headers) is made once per machine, outside the clone.
sid:
	@sh scripts/sid-chroot >/dev/null

e2e: $(OUT)/hawk-bpf sid
	$(PYTEST) -q tests/e2e

# The one command that runs every test on a fresh machine.
test: deps
	$(MAKE) --no-print-directory all $(OUT)/unit-tests $(OUT)/unit-tests-san
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory e2e

demo: deps
	$(MAKE) all
	sh scripts/demo

# hawk-bpf's overhead against tracemalloc on bundled workloads (root, ~4 min).
# BENCH_ARGS=--quick: churn only; BENCH_ARGS="--python PATH": another CPython 3.11.
bench: deps
	$(MAKE) all
	/usr/bin/python3 scripts/bench $(BENCH_ARGS)

clean:
	rm -rf $(OUT)
