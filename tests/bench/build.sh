#!/usr/bin/env bash
# Benchmarks of `bifrost build`'s own work, as ratios against a baseline
# measured in the same run:
#   1. placing a 4 GiB sparse raw image holding 512 MiB of data, against
#      `cp --sparse=always` of the same file (time, and allocated size
#      against the source's);
#   2. parsing a 1-million-line internal-json log, against `jq -c .`.
# Targets: time <= 1.1x cp, allocation <= 1.01x source, parse rate >= 5x jq.
# Usage: tests/bench/build.sh [SCRATCH_DIR]   (needs ~2 GiB free there)
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=${1:-$(mktemp -d "${TMPDIR:-/tmp}/bifrost-bench-XXXXXX")}
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT

cargo build -q --release -p bifrost-core --example place --example parse_log
bin=target/release/examples

now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
best_of() { # best_of N CMD... : the fastest of N runs, in seconds
  local n=$1 best="" t0 t1 d; shift
  for ((i = 0; i < n; i++)); do
    "$@" prep
    t0=$(now); "$@" run; t1=$(now)
    d=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    best=$(awk -v a="$best" -v d="$d" 'BEGIN { print (a == "" || d < a) ? d : a }')
  done
  echo "$best"
}

# 1. Placement. 8 extents of 64 MiB of random data spread over 4 GiB.
src=$scratch/src.raw
truncate -s 4G "$src"
for i in 0 1 2 3 4 5 6 7; do
  dd if=/dev/urandom of="$src" bs=1M count=64 seek=$((i * 512 + 100)) conv=notrunc status=none
done
sync
mkdir -p "$scratch/cp" "$scratch/out"
cp_step() { if [[ $1 == prep ]]; then rm -f "$scratch/cp/x"; sync; else cp --sparse=always "$src" "$scratch/cp/x" && sync "$scratch/cp/x"; fi; }
bf_step() { if [[ $1 == prep ]]; then rm -f "$scratch/out/nixos.raw"; sync; else "$bin/place" "$src" "$scratch/out" nixos.raw >/dev/null; fi; }
t_cp=$(best_of 3 cp_step)
t_bf=$(best_of 3 bf_step)
a_src=$(( $(stat -c %b "$src") * $(stat -c %B "$src") ))
a_bf=$(( $(stat -c %b "$scratch/out/nixos.raw") * $(stat -c %B "$scratch/out/nixos.raw") ))
cmp "$src" "$scratch/out/nixos.raw"
method=$("$bin/place" "$src" "$scratch/out" nixos.raw)

# 2. Parsing. A recorded Nix 2.8 log (substitution, dense in progress
# results) repeated to one million lines.
log=$scratch/log
fixture=tests/fixtures/nix-logs/nix-2.8-substitute.log
awk '{ l[NR] = $0 } END { for (i = 0; i < 1000000; i++) print l[i % NR + 1] }' "$fixture" >"$log"
sed 's/^@nix //' "$log" >"$log.json"
jq_step() { if [[ $1 == run ]]; then jq -c . <"$log.json" >/dev/null; fi; }
parse_step() { if [[ $1 == run ]]; then "$bin/parse_log" "$log" >/dev/null; fi; }
t_jq=$(best_of 1 jq_step)
t_parse=$(best_of 3 parse_step)

echo "placement (4 GiB sparse, 512 MiB data, copy method: $method)"
echo "  cp --sparse=always: ${t_cp}s   bifrost: ${t_bf}s   time ratio: $(ratio "$t_bf" "$t_cp") (target <= 1.1)"
echo "  allocated: source $a_src B, copy $a_bf B   ratio: $(ratio "$a_bf" "$a_src") (target <= 1.01)"
echo "progress parsing (1,000,000 lines)"
echo "  jq -c .: ${t_jq}s   bifrost: ${t_parse}s   rate ratio: $(ratio "$t_jq" "$t_parse") (target >= 5)"
