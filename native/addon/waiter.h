// Async waits. One thread per process sleeps on the change futex of every store handle with
// JavaScript waits pending (futex_waitv, all at once) and tells that handle's JS thread,
// through the handle's thread-safe function, that its store changed; JS then re-checks its
// pending waits. At most one notification per handle is in flight, so a burst of seals costs
// one JS callback, and no libuv pool thread is ever held.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

#include "store.h"

namespace shmstore::addon {

// One handle's registration with the process's waiter thread.
class Waiter {
 public:
  // on_change is called on the JS thread with the change_seq that was observed.
  Waiter(Napi::Env env, Store& store, Napi::Function on_change);
  ~Waiter();  // stop()
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // JS thread: a wait is pending, so report changes after seen (change_seq read before JS last
  // checked) and keep the process alive. It stays so until stop().
  void activate(Napi::Env env, uint32_t seen);
  // Unregisters (on return the thread no longer reads the store), then releases the
  // thread-safe function.
  void stop();
  // Unregisters (if the thread-safe function's finalizer has not already) but leaves the
  // function to Node: for environment teardown, where a release would deadlock.
  void abandon();

  // What the thread knows of a handle; shared with queued JS calls, which may run after the
  // Waiter is gone. store and tsfn are set before the thread sees the State and never change;
  // the other fields are guarded by the thread's mutex.
  struct State : std::enable_shared_from_this<State> {
    explicit State(Store* s) : store(s) {}
    Store* const store;
    Napi::ThreadSafeFunction tsfn;
    bool active = false;
    bool in_flight = false;
    uint32_t acked = 0;  // change_seq as of JS's last full re-check
  };

 private:
  bool unregister();  // true the first time

  std::shared_ptr<State> state_;
  bool registered_ = false;  // JS thread only
  bool referenced_ = false;  // JS thread only
};

}  // namespace shmstore::addon
