#!/usr/bin/env bash
# run.sh BUILD SECONDS TARGET...: runs the fuzz targets built in BUILD (make fuzz) one after
# another, each for SECONDS on the committed corpus tests/fuzz/corpus/<target> plus its working
# corpus BUILD/corpus/<target> (where the inputs it finds go; the committed corpus is only read),
# with 2 GiB of memory and 5 s per input. A finding (crash, sanitizer report, uncaught
# exception, timeout, out-of-memory, leak) stops that target and is saved in
# BUILD/findings/<target>/. Prints executions and findings per target; fails if any found one.
# To commit what a run found, only the inputs that add coverage:
#   BUILD/fuzz_<target> -merge=1 tests/fuzz/corpus/<target> BUILD/corpus/<target>
# and a finding, once fixed, as tests/fuzz/corpus/<target>/finding-<what> (with a test).
set -uo pipefail
build=$1 seconds=$2
shift 2
status=0
for t in "$@"; do
  corpus=$build/corpus/$t findings=$build/findings/$t
  mkdir -p "$corpus" "$findings"
  log=$build/fuzz_$t.log
  before=$(ls "$findings" | wc -l)
  OMP_NUM_THREADS=1 "$build/fuzz_$t" "$corpus" "tests/fuzz/corpus/$t" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  found=$(($(ls "$findings" | wc -l) - before))
  echo "fuzz $t: ${execs:-?} executions in $seconds s, $found findings; $corpus: $(ls "$corpus" | wc -l) inputs; log: $log"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)" "$log" | head -20
  fi
done
exit $status
