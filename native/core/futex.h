// Thin wrappers over the futex(2) calls the store uses. Shared futexes (no FUTEX_PRIVATE_FLAG):
// the word lives in a MAP_SHARED segment and waiters sit in several processes.
#pragma once

#include <cstdint>
#include <ctime>

namespace shmstore::futex {

inline constexpr uint32_t kMatchAny = 0xffff'ffffu;

// Sleeps while *word == expected, until woken with a bitset that intersects `bitset` or the
// absolute CLOCK_MONOTONIC deadline passes (nullptr: no deadline). Returns false on timeout.
bool wait(uint32_t* word, uint32_t expected, const timespec* deadline, uint32_t bitset);

// Wakes every waiter on word whose bitset intersects `bitset`.
void wake(uint32_t* word, uint32_t bitset);

// Absolute CLOCK_MONOTONIC time `ns` from now.
timespec deadline_after_ns(int64_t ns);
int64_t monotonic_ns();

}  // namespace shmstore::futex
