#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>

#include "errors.h"

namespace shmstore::futex {

bool wait(uint32_t* word, uint32_t expected, const timespec* deadline) {
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so EINTR retries do not
  // stretch the wait.
  long rc = ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return true;
  switch (errno) {
    case EAGAIN:  // the word already changed
    case EINTR:
      return true;
    case ETIMEDOUT:
      return false;
    default:
      fail_errno("futex wait", errno);
  }
}

void wake(uint32_t* word) { ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

void wake_local(uint32_t* word) {
  ::syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

namespace {
#ifndef SYS_futex_waitv
constexpr long SYS_futex_waitv = 449;
#endif
// <linux/futex.h> of older kernels lacks these; the ABI is fixed.
struct WaitV {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};
constexpr uint32_t kFutex2SizeU32 = 0x02, kFutex2Private = 128;

// Sleeps while *local (a word in this process) == expected, at most timeout_ns.
void wait_local(uint32_t* local, uint32_t expected, int64_t timeout_ns) {
  const timespec poll = deadline_after_ns(timeout_ns);
  const long rc = ::syscall(SYS_futex, local, FUTEX_WAIT_BITSET_PRIVATE, expected, &poll, nullptr,
                            FUTEX_BITSET_MATCH_ANY);
  (void)rc;  // woken, timed out or the word moved: the caller looks again either way
}
}  // namespace

void wait_any(std::span<const Watched> shared, uint32_t* local, uint32_t local_expected, int64_t timeout_ns) {
  // A kernel (or a seccomp filter) without futex_waitv says so once; then poll.
  static std::atomic<bool> has_waitv{true};
  if (shared.size() <= kMaxWatched && has_waitv.load(std::memory_order_relaxed)) {
    WaitV v[kMaxWatched + 1];
    size_t n = 0;
    for (const Watched& w : shared) v[n++] = {w.expected, reinterpret_cast<uint64_t>(w.word), kFutex2SizeU32, 0};
    v[n++] = {local_expected, reinterpret_cast<uint64_t>(local), kFutex2SizeU32 | kFutex2Private, 0};
    const timespec deadline = deadline_after_ns(timeout_ns < 0 ? 0 : timeout_ns);
    if (::syscall(SYS_futex_waitv, v, n, 0, timeout_ns < 0 ? nullptr : &deadline, CLOCK_MONOTONIC) >= 0) return;
    if (errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT) return;  // differs, a signal, time
    if (errno == ENOSYS || errno == EPERM) has_waitv.store(false, std::memory_order_relaxed);
  }
  // Sleep on one word, with a timeout that bounds how late a change of the others is seen.
  if (shared.size() != 1) return wait_local(local, local_expected, 1'000'000);
  const timespec poll = deadline_after_ns(10'000'000);
  const long rc = ::syscall(SYS_futex, shared[0].word, FUTEX_WAIT_BITSET, shared[0].expected, &poll, nullptr,
                            FUTEX_BITSET_MATCH_ANY);
  (void)rc;  // woken, timed out or the word moved: the caller looks again either way
}

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

timespec deadline_after_ns(int64_t ns) {
  const int64_t at = monotonic_ns() + ns;
  return timespec{static_cast<time_t>(at / 1'000'000'000), static_cast<long>(at % 1'000'000'000)};
}

}  // namespace shmstore::futex
