#!/usr/bin/env bash
# Builds and runs the core's native tests (ctest) in three configurations:
#   release  build-native/release
#   tsan     build-native/tsan   (-DSHMSTORE_SANITIZE=thread)
#   asan     build-native/asan   (-DSHMSTORE_SANITIZE=address: ASan + UBSan)
# Usage: scripts/native-tests.sh [release|tsan|asan ...]   (default: all three)
# Runs every requested configuration, then exits non-zero if any build or test failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then configs=(release tsan asan); fi

jobs="${JOBS:-2}"
failed=()

# ThreadSanitizer maps its shadow at fixed addresses; on kernels with many bits of mmap
# randomisation (vm.mmap_rnd_bits > 28) older runtimes die with "FATAL: ThreadSanitizer:
# unexpected memory mapping". Running without address-space randomisation avoids it.
tsan_prefix=()
if command -v setarch >/dev/null 2>&1 && setarch "$(uname -m)" -R true >/dev/null 2>&1; then
  tsan_prefix=(setarch "$(uname -m)" -R)
fi

for config in "${configs[@]}"; do
  case "$config" in
    release) sanitize="" ;;
    tsan) sanitize="thread" ;;
    asan) sanitize="address" ;;
    *) echo "unknown configuration '$config' (release, tsan or asan)" >&2; exit 2 ;;
  esac
  dir="build-native/$config"
  echo "=== $config: $dir ==="
  if ! cmake -S native -B "$dir" -DSHMSTORE_TESTS=ON -DSHMSTORE_SANITIZE="$sanitize"; then
    failed+=("$config (configure)"); continue
  fi
  if ! cmake --build "$dir" -j "$jobs"; then
    failed+=("$config (build)"); continue
  fi
  prefix=()
  if [ "$config" = tsan ]; then prefix=("${tsan_prefix[@]}"); fi
  if ! "${prefix[@]}" ctest --test-dir "$dir" --output-on-failure; then
    failed+=("$config (tests)")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "native tests FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "native tests passed: ${configs[*]}"
