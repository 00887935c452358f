// The store's one lock: a process-shared robust mutex in the header. Locking it after its
// holder died repairs the derived state before anyone sees it (see Store::repair_locked).
#pragma once

#include <pthread.h>

#include <cerrno>

#include "errors.h"
#include "store.h"

namespace shmstore {

class Store::Locked {
 public:
  explicit Locked(Store& s) : s_(s) {
    const int rc = pthread_mutex_lock(&s_.hdr_->mutex);
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
        pthread_mutex_unlock(&s_.hdr_->mutex);
        throw;
      }
    } else if (rc == ENOTRECOVERABLE) {
      fail(Errc::BadSegment, "bad segment: the store lock is unrecoverable");
    } else if (rc != 0) {
      fail_errno("pthread_mutex_lock", rc);
    }
  }
  ~Locked() { pthread_mutex_unlock(&s_.hdr_->mutex); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  Store& s_;
};

}  // namespace shmstore
