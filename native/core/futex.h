// Thin wrappers over the futex(2) calls the store uses. Shared futexes (no FUTEX_PRIVATE_FLAG):
// the word lives in a MAP_SHARED segment and waiters sit in several processes.
#pragma once

#include <cstdint>
#include <ctime>

namespace shmstore::futex {

// Sleeps while *word == expected, until woken or the absolute CLOCK_MONOTONIC deadline passes
// (nullptr: no deadline). Returns false on timeout.
bool wait(uint32_t* word, uint32_t expected, const timespec* deadline);

// Sleeps while *shared == shared_expected and *local == local_expected: `shared` lives in the
// segment, `local` in this process (futex_waitv, Linux 5.16+; older kernels get a 10 ms poll
// of `local`). Returns when either may have changed; never throws.
void wait_either(uint32_t* shared, uint32_t shared_expected, uint32_t* local, uint32_t local_expected);

// Wakes every waiter on a shared word / on a process-local word.
void wake(uint32_t* word);
void wake_local(uint32_t* word);

// Absolute CLOCK_MONOTONIC time `ns` from now.
timespec deadline_after_ns(int64_t ns);
int64_t monotonic_ns();

}  // namespace shmstore::futex
