#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, with clang, ASan + UBSan) and runs each for SECONDS
# (default 30) from its seed corpus, printing executions and coverage per target. Exit status is
# non-zero if any target crashed, hit a sanitizer report, a timeout or its memory limit; the
# input that did it is kept under build/fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh                    # every target, 30 s each
#   scripts/fuzz.sh 600 http_request   # one target for 10 minutes
#
# Inputs found along the way go to build/fuzz/corpus/TARGET/ (seeded from fuzz/corpus/TARGET/);
# the committed seeds are never modified. FUZZ_BUILD_DIR and FUZZ_JOBS (build parallelism)
# override the defaults; FUZZ_SKIP_BUILD=1 runs what is built (for runs side by side).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-30}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-build/fuzz}

# clang and its libFuzzer/sanitizer runtimes (Debian 12: clang 14).
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "== installing clang and libFuzzer"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
fi
# The tokenizer targets read the test models' tokenizer files.
[ -f tests/data/tokenizers/tiny-llama2/tokenizer.json ] || scripts/fetch_tokenizers.sh >/dev/null

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  echo "== building the fuzz targets ($build)"
  # ccache keys on paths relative to the checkout, so other checkouts' fuzz builds share entries.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVLLM_FUZZ=ON \
      -DVLLM_CUDA=OFF -DVLLM_BUILD_TESTS=OFF -DVLLM_BUILD_BENCHMARKS=OFF -DVLLM_BUILD_PYTHON=OFF >/dev/null
  fi
  cmake --build "$build" --target fuzzers -j "${FUZZ_JOBS:-${CMAKE_BUILD_PARALLEL_LEVEL:-2}}"
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < "$build/fuzz_targets.txt"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=$(printf '%-20s %12s %8s %8s %6s  %s' target executions cov ft corpus result)
for t in "${targets[@]}"; do
  [ -n "$t" ] || continue
  bin="$build/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no target '$t' (see $build/fuzz_targets.txt)" >&2; exit 2; }
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts" "$build/logs"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=fuzz/dict/$t.dict")
  log="$build/logs/$t.log"
  echo "== $t: ${seconds}s"
  status=0
  # -timeout: one input may take this long (the chat template interpreter's loop limit is the
  # slowest legitimate case); -rss_limit_mb: the process's memory, a runaway allocation is a finding.
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  result=ok
  if [ "$status" != 0 ]; then
    result="FAILED (exit $status; log $log)"
    failed+=("$t")
    grep -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|FUZZ_CHECK|deadly signal|Test unit written' "$log" | head -5 >&2 || true
  fi
  line=$(printf '%-20s %12s %8s %8s %6s  %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")
  echo "$line"
  summary+=$'\n'"$line"
done
echo "== fuzz summary (${seconds}s per target)"
echo "$summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
