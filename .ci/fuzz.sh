#!/usr/bin/env bash
# Fuzzes every parser of untrusted files with libFuzzer for a bounded time; fails on any crash.
#
#   .ci/fuzz.sh                      build, then fuzz each target for 60 s (two at a time)
#   CPISCOPE_FUZZ_SECONDS=300 .ci/fuzz.sh       longer runs
#   CPISCOPE_FUZZ_SECONDS=0 .ci/fuzz.sh         build and replay the seed corpora only
#   CPISCOPE_FUZZ_TARGETS="tokenizer encoder" .ci/fuzz.sh    some targets only
#   CPISCOPE_FUZZ_JOBS=1 .ci/fuzz.sh            one target at a time (default: 2)
#
# The harness is Sources/FuzzHarness (targets listed in FuzzTargets.swift), built into its own
# scratch folder with -sanitize=fuzzer,address. Seeds: Tests/Fixtures/fuzz-corpus/<target>/ (read
# only; new inputs go to a temporary corpus). A crash, an ASan report, an input slower than
# CPISCOPE_FUZZ_TIMEOUT seconds (default 20) or an allocation over 1 GiB fails the script; the input
# is kept under .build-fuzz/artifacts/ and the log tells how to replay it. Keep each one as a
# regression input: copy it to Tests/Fixtures/fuzz-corpus/<target>/regress-<what> (see the README there).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${CPISCOPE_FUZZ_SECONDS:-60}"
JOBS="${CPISCOPE_FUZZ_JOBS:-2}"
TIMEOUT="${CPISCOPE_FUZZ_TIMEOUT:-20}"
SCRATCH=.build-fuzz
BIN="$SCRATCH/debug/cpiscope-fuzz"
ARTIFACTS="$SCRATCH/artifacts"
SWIFT="${SWIFT:-swift}"

echo "fuzz: building the libFuzzer harness ($SCRATCH)" >&2
"$SWIFT" build -c debug --scratch-path "$SCRATCH" --product cpiscope-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DCPISCOPE_LIBFUZZER \
    2>&1 | { grep -v "Cannot export local symbol" || true; } >&2

targets="${CPISCOPE_FUZZ_TARGETS:-}"
if [ -z "$targets" ]; then
    targets=""
    while IFS=$'\t' read -r name state; do
        if [ "$state" = available ]; then targets="$targets $name"
        else echo "fuzz: skipping '$name' (its parser is not in this build)" >&2; fi
    done < <(CPISCOPE_FUZZ_LIST=1 "$BIN")
fi

mkdir -p "$ARTIFACTS"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=0:handle_abort=1"

# One target: fresh temporary corpus merged from the seeds; libFuzzer's exit status decides.
fuzz_one() {
    local t="$1" seeds="Tests/Fixtures/fuzz-corpus/$1"
    local log="$work/$t.log" corpus="$work/corpus-$t"
    mkdir -p "$corpus"
    local args=(-timeout="$TIMEOUT" -rss_limit_mb=2048 -malloc_limit_mb=1024 -detect_leaks=0
                -artifact_prefix="$ARTIFACTS/$t-" -print_final_stats=1)
    if [ "$SECONDS_PER_TARGET" = 0 ]; then args+=(-runs=0); else args+=(-max_total_time="$SECONDS_PER_TARGET"); fi
    if CPISCOPE_FUZZ_TARGET="$t" "$BIN" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1; then
        local runs; runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz: $t: no crash in ${SECONDS_PER_TARGET} s ($runs inputs)" >&2
        return 0
    fi
    echo "fuzz: $t: FAILED" >&2
    grep -E "ERROR|SUMMARY|invariant broken|Fatal error|Test unit written|out-of-memory|timeout" "$log" | head -20 >&2 || true
    echo "fuzz: full log: $ARTIFACTS/$t.log; replay: CPISCOPE_FUZZ_TARGET=$t $BIN <artifact>" >&2
    cp "$log" "$ARTIFACTS/$t.log"
    return 1
}

status=0
pids=() names=()
for t in $targets; do
    [ -d "Tests/Fixtures/fuzz-corpus/$t" ] || { echo "fuzz: no seed corpus for '$t'" >&2; status=1; continue; }
    fuzz_one "$t" & pids+=($!); names+=("$t")
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}"); names=("${names[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done

if [ "$status" -ne 0 ]; then echo "fuzz: FAILED (artifacts in $ARTIFACTS)" >&2; exit 1; fi
echo "fuzz: all targets clean:$targets" >&2
