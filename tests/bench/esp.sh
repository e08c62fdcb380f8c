#!/usr/bin/env bash
# Benchmark of `bifrost esp install`, printed as ratios measured in one run:
#   1. full install of 100 generations sharing 10 distinct kernel+initrd pairs,
#      against a plain `cp` (and `cp` + fsync) of just the distinct files;
#   2. bytes on the ESP against the distinct files + refind.conf (+ rEFInd);
#   3. a re-run with nothing changed: bytes written and time against (1).
# Each timing is the best of $BENCH_REPEAT runs with a warm page cache.
#
# Usage: tests/bench/esp.sh   (builds the release binary first)
# Env: BIFROST_BIN, BIFROST_REFIND_DIR, KERNEL_MIB (8), INITRD_MIB (24), BENCH_REPEAT (5)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z ${BIFROST_BIN:-} ]]; then
  cargo build --release -q -p bifrost-cli
  BIFROST_BIN=$PWD/target/release/bifrost
fi
refind=${BIFROST_REFIND_DIR:-/usr/share/refind/refind}/refind_x64.efi
kmib=${KERNEL_MIB:-8}
imib=${INITRD_MIB:-24}
repeat=${BENCH_REPEAT:-5}

work=$(mktemp -d "${TMPDIR:-/tmp}/bifrost-bench-esp.XXXXXX")
[[ -n ${BENCH_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
store=$work/nix/store
mkdir -p "$store" "$work/profiles"

hashof() { printf '%s' "$1" | sha256sum | cut -c1-32; }
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

distinct=()
for p in $(seq 0 9); do
  k=$store/$(hashof "linux-$p")-linux-6.$p/bzImage
  i=$store/$(hashof "initrd-$p")-initrd-linux-6.$p/initrd
  mkdir -p "$(dirname "$k")" "$(dirname "$i")"
  head -c $((kmib << 20)) /dev/urandom >"$k"
  head -c $((imib << 20)) /dev/urandom >"$i"
  distinct+=("$k" "$i")
done
for g in $(seq 1 100); do
  p=$((g % 10))
  top=$store/$(hashof "system-$g")-nixos-system-$g
  mkdir -p "$top"
  k=${distinct[$((2 * p))]}
  i=${distinct[$((2 * p + 1))]}
  cat >"$top/boot.json" <<JSON
{"org.nixos.bootspec.v1":{"label":"NixOS 26.05 ($g)","kernel":"$k","kernelParams":["quiet","loglevel=4"],"init":"$top/init","initrd":"$i","system":"x86_64-linux","toplevel":"$top"}}
JSON
  ln -s "$top" "$work/profiles/system-$g-link"
done
cat "${distinct[@]}" >/dev/null # warm cache for every contender
distinct_bytes=$(cat "${distinct[@]}" | wc -c)

best() { printf '%s\n' "$@" | sort -g | head -n1; }
# Store files share base names (bzImage, initrd): one cp process keeps
# them apart with --parents (one process, as bifrost is one).
cp_all() { cp --parents "${distinct[@]}" "$1/"; }

# One suite: ESP and cp targets under $1 (a disk folder, or a tmpfs where
# fsync costs nothing, which isolates bifrost's own work from the disk's).
suite() {
  local base=$1 label=$2
  t_cp=() t_cpsync=() t_full=() t_rerun=()
  for _ in $(seq "$repeat"); do
    rm -rf "$base/cp"; mkdir "$base/cp"
    s=$(now); cp_all "$base/cp"; e=$(now)
    t_cp+=("$(calc "$e - $s")")
    rm -rf "$base/cp"; mkdir "$base/cp"
    s=$(now); cp_all "$base/cp"; find "$base/cp" -type f -exec sync {} +; e=$(now)
    t_cpsync+=("$(calc "$e - $s")")
    rm -rf "$base/cp" "$base/esp"; mkdir "$base/esp"
    s=$(now)
    "$BIFROST_BIN" esp install --esp "$base/esp" --profiles "$work/profiles" --refind-efi "$refind" 2>/dev/null >"$work/full.out"
    e=$(now)
    t_full+=("$(calc "$e - $s")")
  done
  cp_s=$(best "${t_cp[@]}"); cpsync_s=$(best "${t_cpsync[@]}"); full_s=$(best "${t_full[@]}")
  esp_bytes=$(find "$base/esp" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  conf_bytes=$(wc -c <"$base/esp/EFI/refind/refind.conf")
  refind_bytes=$(wc -c <"$refind")
  extra=$((esp_bytes - distinct_bytes - conf_bytes - refind_bytes))
  touch "$work/marker"; sleep 0.01
  for _ in $(seq "$repeat"); do
    s=$(now)
    "$BIFROST_BIN" esp install --esp "$base/esp" --profiles "$work/profiles" --refind-efi "$refind" 2>/dev/null >"$work/rerun.out"
    e=$(now)
    t_rerun+=("$(calc "$e - $s")")
  done
  rerun_s=$(best "${t_rerun[@]}")
  rerun_written=$(grep -o '[0-9]* bytes written' "$work/rerun.out" | cut -d' ' -f1)
  changed=$(find "$base/esp" -newer "$work/marker" | wc -l)

  printf '== ESP on %s\n' "$label"
  printf 'cp of distinct files:          %.3f s\n' "$cp_s"
  printf 'cp + fsync of distinct files:  %.3f s\n' "$cpsync_s"
  printf 'bifrost esp install (full):    %.3f s   ratio vs cp: %.2f (target <= 1.30); vs cp+fsync: %.2f\n' \
    "$full_s" "$(calc "$full_s / $cp_s")" "$(calc "$full_s / $cpsync_s")"
  printf 'ESP bytes: %d = distinct %d + refind.conf %d + rEFInd binary %d + other %d\n' \
    "$esp_bytes" "$distinct_bytes" "$conf_bytes" "$refind_bytes" "$extra"
  printf 're-run, nothing changed:       %.3f s   ratio vs full: %.3f (target <= 0.05); bytes written: %s; ESP entries modified: %d\n' \
    "$rerun_s" "$(calc "$rerun_s / $full_s")" "$rerun_written" "$changed"
}

printf 'distinct files: 20 (%d bytes); generations: 100; load: %s\n' "$distinct_bytes" "$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$work/disk"
suite "$work/disk" "disk ($(stat -f -c %T "$work"))"
mkdir -p "$work/tmpfs"
if mount -t tmpfs -o size=$((2 * distinct_bytes / 1048576 + 64))m bifrost-bench "$work/tmpfs" 2>/dev/null; then
  trap 'umount "$work/tmpfs"; rm -rf "$work"' EXIT
  suite "$work/tmpfs" "tmpfs (no disk wait: bifrost's own overhead)"
else
  echo "(tmpfs suite skipped: mount needs root)"
fi
