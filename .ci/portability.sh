#!/usr/bin/env bash
# Runs the numeric test suites once under every OpenBLAS kernel family this CPU can execute, and once with
# the direct AVX512-BF16 kernel switched off (every bf16 product on oneDNN), so that a kernel choice made
# on another machine never first shows up as a red suite there (issue 24). `make test` runs it after the
# full suite (which ran under OpenBLAS's own choice and the direct kernel).
#
#   .ci/portability.sh                       after `swift build --build-tests`
#   CPISCOPE_PORTABILITY_CORES="Haswell" .ci/portability.sh     some core types only
#
# Core types: Prescott (SSE3; every x86-64), Haswell (AVX2 + FMA), SkylakeX (AVX-512 F/DQ/BW/VL). The
# flags come from /proc/cpuinfo here (a test script; cpiscope itself asks CPUID).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT="${SWIFT:-swift}"
NUMERIC="TensorCoreTests|ModelsTests|ProbeRunTests|CriticalityTests|CLITests.DeterminismTests"

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
cores="${CPISCOPE_PORTABILITY_CORES:-}"
if [ -z "$cores" ]; then
    cores="Prescott"
    has avx2 fma && cores="$cores Haswell"
    has avx512f avx512dq avx512bw avx512vl && cores="$cores SkylakeX"
fi

run() {
    local label="$1"; shift
    echo "portability: numeric suites with $label" >&2
    if ! env "$@" "$SWIFT" test --skip-build --filter "$NUMERIC" > "$log" 2>&1; then
        grep -E "✘|error:" "$log" | head -40 >&2
        echo "portability: FAILED with $label (full log: $log)" >&2
        exit 1
    fi
    grep -E "Test run with" "$log" | tail -n 1 >&2
}
log="$(mktemp)"
for core in $cores; do run "OPENBLAS_CORETYPE=$core" OPENBLAS_CORETYPE="$core"; done
run "CPISCOPE_BF16_DIRECT=0 (bf16 products on oneDNN)" CPISCOPE_BF16_DIRECT=0
rm -f "$log"
