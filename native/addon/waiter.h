// The per-store waiter thread: sleeps on the segment's change futex while JavaScript has async
// waits pending and tells the JS thread (through one thread-safe function) that something
// changed; JS then re-checks its pending waits. At most one notification is in flight, so a
// burst of seals costs one JS callback, and no libuv pool thread is ever held.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "store.h"

namespace shmstore::addon {

class Waiter {
 public:
  // on_change is called on the JS thread with the change_seq that was observed.
  Waiter(Napi::Env env, Store& store, Napi::Function on_change);
  ~Waiter();  // stop()
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // JS thread. active: some wait is pending. seen: change_seq read before JS last checked.
  void set_active(Napi::Env env, bool active, uint32_t seen);
  // Stops and joins the thread, then releases the thread-safe function.
  void stop();
  // Stops and joins the thread but leaves the thread-safe function to Node: for environment
  // teardown, where Node is closing it and a release would deadlock.
  void abandon();

 private:
  // Shared with queued JS calls, which may run after the Waiter is gone.
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    bool active = false;
    bool in_flight = false;
    bool stopping = false;
    uint32_t acked = 0;  // change_seq as of JS's last full re-check
    uint32_t wake_word = 0;  // process-local futex word: bumped to wake the thread (atomic_ref)
    void delivered(uint32_t seq);  // JS thread, after on_change ran
  };

  void run();
  bool halt();  // true the first time
  void wake_thread();

  Store& store_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  bool referenced_ = false;  // JS thread only
};

}  // namespace shmstore::addon
