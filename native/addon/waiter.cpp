#include "waiter.h"

#include <exception>

namespace shmstore::addon {

Waiter::Waiter(Napi::Env env, Store& store, Napi::Function on_change) : store_(store) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, on_change, "shmstore-waiter", 0, 1);
  tsfn_.Unref(env);  // an idle waiter must not keep the process alive
  thread_ = std::thread([this] { run(); });
}

Waiter::~Waiter() { stop(); }

void Waiter::stop() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  state_->cv.notify_all();
  store_.wake_local();
  if (thread_.joinable()) thread_.join();
  tsfn_.Release();
}

void Waiter::set_active(Napi::Env env, bool active, uint32_t seen) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return;
    if (active && !state_->active) state_->acked = seen;  // from idle: JS's own check is the baseline
    state_->active = active;
  }
  // Pending waits keep the process alive, as a pending timer would.
  if (active != referenced_) {
    if (active) tsfn_.Ref(env); else tsfn_.Unref(env);
    referenced_ = active;
  }
  state_->cv.notify_all();
  store_.wake_local();  // a waiter asleep on an old baseline must look again
}

void Waiter::State::delivered(uint32_t seq) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    acked = seq;
    in_flight = false;
  }
  cv.notify_all();
}

void Waiter::run() {
  for (;;) {
    uint32_t acked;
    {
      std::unique_lock<std::mutex> lock(state_->mutex);
      state_->cv.wait(lock, [this] { return state_->stopping || (state_->active && !state_->in_flight); });
      if (state_->stopping) return;
      acked = state_->acked;
    }
    try {
      const uint32_t now = store_.change_seq();
      if (now == acked) {
        // Woken by a change anywhere or by wake_local (new wait, stop): loop and look again.
        store_.wait_change(acked, nullptr, store_.local_bitset());
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->in_flight = true;
      }
      auto call = [state = state_, now](Napi::Env env, Napi::Function fn) {
        if (env != nullptr && !fn.IsEmpty()) fn.Call({Napi::Number::New(env, now)});
        state->delivered(now);  // even if fn threw: the exception stays pending for Node
      };
      if (tsfn_.NonBlockingCall(call) != napi_ok) return;  // closing
    } catch (const std::exception&) {
      return;  // a broken segment: pending waits end by their timeouts on the JS side
    }
  }
}

}  // namespace shmstore::addon
