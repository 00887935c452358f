// Thin wrappers over the futex(2) calls the store uses. Shared futexes (no FUTEX_PRIVATE_FLAG):
// the word lives in a MAP_SHARED segment and waiters sit in several processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <span>

namespace shmstore::futex {

// Sleeps while *word == expected, until woken or the absolute CLOCK_MONOTONIC deadline passes
// (nullptr: no deadline). Returns false on timeout.
bool wait(uint32_t* word, uint32_t expected, const timespec* deadline);

// A word and the value to sleep on.
struct Watched {
  uint32_t* word;
  uint32_t expected;
};

// Most shared words wait_any sleeps on at once (futex_waitv takes 128, one is `local`).
inline constexpr size_t kMaxWatched = 127;

// Sleeps while every shared[i].word (in segments) holds its expected value and *local (in this
// process) == local_expected, at most timeout_ns (-1: no limit): futex_waitv, Linux 5.16+.
// Without it, it sleeps on one word for at most 10 ms (on `local` for 1 ms if there are
// several shared words). At most kMaxWatched shared words. Returns when any may have changed;
// never throws.
void wait_any(std::span<const Watched> shared, uint32_t* local, uint32_t local_expected, int64_t timeout_ns = -1);

// Wakes every waiter on a shared word / on a process-local word.
void wake(uint32_t* word);
void wake_local(uint32_t* word);

// Absolute CLOCK_MONOTONIC time `ns` from now.
timespec deadline_after_ns(int64_t ns);
int64_t monotonic_ns();

}  // namespace shmstore::futex
