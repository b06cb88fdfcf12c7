#!/usr/bin/env bash
# Flash footprint of the no_std proof as a firmware would link it.
#
#   scripts/firmware-size.sh TARGET [cargo feature flags...]
#   scripts/firmware-size.sh thumbv7em-none-eabihf --no-default-features
#
# Builds examples/no-std-proof with the `size` profile (opt-level "z", fat
# LTO, one codegen unit) and `-Zbuild-std=core` on nightly, links the static
# library with rust-lld keeping only what its exported `mechops_*` functions
# reach (--gc-sections, as a firmware link does), and prints the size of each
# section of the result. Needs a nightly toolchain with rust-src.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: $0 TARGET [cargo feature flags...]}
shift

manifest=examples/no-std-proof/Cargo.toml
cargo +nightly build -Zbuild-std=core --profile size --target "$target" \
    --manifest-path "$manifest" "$@" >&2
lib="examples/no-std-proof/target/$target/size/libmechops_no_std_proof.a"

sysroot=$(rustc +nightly --print sysroot)
lld=$(find "$sysroot/lib/rustlib" -name rust-lld -type f | head -n 1)
names=()
roots=()
while read -r sym; do
    names+=("$sym")
    roots+=(-u "$sym")
done < <(nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" && $3 ~ /^mechops_/ { print $3 }' | sort -u)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# No entry point: the roots are the exported functions. With the
# `critical-section` feature the firmware supplies the two critical-section
# functions; stand-ins at address 0 let the link finish without them.
"$lld" -flavor gnu --gc-sections -e 0 "${roots[@]}" \
    --defsym=_critical_section_1_0_acquire=0 --defsym=_critical_section_1_0_release=0 \
    -o "$out/proof.elf" "$lib"
printf 'target %s, features: %s\nexported: %s\n' "$target" "${*:-default}" "${names[*]}"
size -A "$out/proof.elf" | awk '$1 ~ /^\.(text|rodata|data|bss)$/ { printf "%-8s %7d bytes\n", $1, $2 }'
