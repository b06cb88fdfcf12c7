#!/usr/bin/env bash
# The whole mechops test suite: formatting, lints, unused dependencies, tests,
# the no_std proof on the host and on three microcontroller targets, miri over
# the unsafe code, the loom models and a fuzz smoke run. Installs what it needs
# by itself; the nightly-only steps (embedded targets, miri, fuzzing) say so
# and are skipped when no nightly toolchain is installed.
#
#   FUZZ_SECONDS   seconds per fuzz target (default 30)
#   LOOM_MAX_PREEMPTIONS  loom's preemption bound (default 2)
#   MIRI_PROPTEST_CASES   proptest cases per property under miri (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "redis-server (the Redis store's tests start their own)"
if ! command -v redis-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq redis-server >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
fi
redis-server --version

step "PostgreSQL (the PostgreSQL pool tests start their own)"
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
fi
ls /usr/lib/postgresql/*/bin/initdb

have_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }
# Adds a nightly component when missing; false (with a message) when it cannot.
nightly_component() {
    rustup +nightly component list --installed 2>/dev/null | grep -q "^$1" && return 0
    step "installing the nightly $1 component"
    rustup component add "$1" --toolchain nightly || {
        echo "nightly $1 is not available here"
        return 1
    }
}

step "format"
cargo fmt --all -- --check

step "unused dependencies"
if ! cargo machete --version >/dev/null 2>&1; then
    step "installing cargo-machete"
    cargo install cargo-machete --locked
fi
cargo machete

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
else
    cargo test --no-fail-fast
fi
# nextest does not run doc tests (the compile-fail proofs among them).
cargo test --doc

step "release-mode stress tests"
cargo test --release -p mechops-core --test pool_stress

step "no_std proof"
cargo build --release --manifest-path examples/no-std-proof/Cargo.toml

# thumbv7em has compare-and-swap but no 64-bit atomics; thumbv6m and
# riscv32imc have neither. The core must build on each with default features,
# without the codec, and with critical-section supplying the atomics; the
# no_std proof links the core with the same features, so building it builds
# both.
step "embedded targets"
if have_nightly && nightly_component rust-src; then
    for target in thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imc-unknown-none-elf; do
        for features in "" "--no-default-features" "--features critical-section"; do
            echo "$target: ${features:-default features}"
            cargo +nightly build -Zbuild-std=core -q --release --target "$target" $features \
                --manifest-path examples/no-std-proof/Cargo.toml
        done
    done
else
    echo "no nightly toolchain with rust-src: skipping the embedded target builds"
fi

# Every module with unsafe code: the core's pools (through `sync`) and shelf, queue and
# LRU, the growable, high-frequency and session pools of mechops-alloc. Property tests run MIRI_PROPTEST_CASES cases;
# isolation stays on (proptest's regression-file lookup just warns), with
# PROPTEST_CASES forwarded through it.
step "miri"
if have_nightly && nightly_component miri && nightly_component rust-src; then
    export MIRIFLAGS="-Zmiri-isolation-error=warn-nobacktrace -Zmiri-env-forward=PROPTEST_CASES ${MIRIFLAGS:-}"
    miri_cases=${MIRI_PROPTEST_CASES:-4}
    PROPTEST_CASES=$miri_cases cargo +nightly miri test -p mechops-core --lib -- queue:: lru:: pool::shelf::
    PROPTEST_CASES=$miri_cases cargo +nightly miri test -p mechops-core \
        --test pool_model --test pool_sharded_model
    # The doc examples share pools between threads: miri checks them for data races.
    cargo +nightly miri test -p mechops-core --doc -- pool queue lru
    PROPTEST_CASES=$miri_cases cargo +nightly miri test -p mechops-alloc --lib -- pool:: session::
else
    echo "no nightly toolchain with miri: skipping the miri run"
fi

step "loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
RUSTFLAGS="--cfg loom" cargo test -p mechops-loom-tests --release --target-dir target/loom

step "fuzz smoke (${FUZZ_SECONDS}s per target)"
targets=$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^mechops-fuzz$' || true)
if have_nightly; then
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        step "installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    for t in $targets; do
        mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
        step "fuzz $t"
        log="target/fuzz-$t.log"
        mkdir -p target
        if (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
            grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$log" || tail -n 3 "$log"
        else
            tail -n 60 "$log"
            echo "fuzz target $t failed (full log: $log)"
            exit 1
        fi
    done
else
    echo "no nightly toolchain: replaying the seed corpus on stable instead of fuzzing"
    cargo build --release --manifest-path fuzz/Cargo.toml
    for t in $targets; do
        step "replay $t"
        mkdir -p fuzz/seeds/"$t"
        ./fuzz/target/release/"$t" -runs=0 fuzz/seeds/"$t"
    done
fi

elapsed=$(( $(date +%s) - started ))
printf '\nall checks passed in %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))
