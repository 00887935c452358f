// The store's one lock: a process-shared robust mutex in the header. Locking it after its
// holder died repairs the derived state before anyone sees it (see Store::repair_locked).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cerrno>

#include "errors.h"
#include "store.h"

namespace shmstore {

class Store::Locked {
 public:
  explicit Locked(Store& s) : s_(s) {
    const int rc = pthread_mutex_lock(&s_.hdr_->mutex);
    if (rc == 0 || rc == EOWNERDEAD) begin_table_write();
    if (rc == EOWNERDEAD) {
      // The previous holder died inside a critical section: tables may be half-updated.
      try {
        s_.repair_locked();
      } catch (...) {
        // Unlocking without pthread_mutex_consistent makes the lock unrecoverable: every
        // process then gets ERR_BAD_SEGMENT instead of waiting forever on a lock we hold.
        pthread_mutex_unlock(&s_.hdr_->mutex);
        throw;
      }
      pthread_mutex_consistent(&s_.hdr_->mutex);
      try {
        s_.reclaim_dead_clients_locked();  // most likely the one that died holding the lock
      } catch (...) {
        end_table_write();  // repaired: the tables are whole again
        pthread_mutex_unlock(&s_.hdr_->mutex);
        throw;
      }
    } else if (rc == ENOTRECOVERABLE) {
      fail(Errc::BadSegment, "bad segment: the store lock is unrecoverable");
    } else if (rc != 0) {
      fail_errno("pthread_mutex_lock", rc);
    }
  }
  ~Locked() {
    end_table_write();
    pthread_mutex_unlock(&s_.hdr_->mutex);
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  // The seqlock's writer side (readers: Store::copy_out_unlocked). Only the mutex holder
  // writes table_seq, so plain loads and stores suffice; the fence keeps the odd value ahead
  // of the section's writes, the release store keeps them ahead of the even one. A holder
  // that died mid-section left it odd: it stays odd through the repair.
  void begin_table_write() {
    std::atomic_ref<uint32_t> seq(s_.hdr_->table_seq);
    const uint32_t v = seq.load(std::memory_order_relaxed);
    if ((v & 1) == 0) seq.store(v + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void end_table_write() {
    std::atomic_ref<uint32_t> seq(s_.hdr_->table_seq);
    seq.store((seq.load(std::memory_order_relaxed) | 1) + 1, std::memory_order_release);
  }

  Store& s_;
};

}  // namespace shmstore
