#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "errors.h"

namespace shmstore::futex {

bool wait(uint32_t* word, uint32_t expected, const timespec* deadline, uint32_t bitset) {
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so EINTR retries do not
  // stretch the wait.
  long rc = ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, nullptr, bitset);
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

void wake(uint32_t* word, uint32_t bitset) {
  ::syscall(SYS_futex, word, FUTEX_WAKE_BITSET, INT_MAX, nullptr, nullptr, bitset);
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
