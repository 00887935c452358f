#include "waiter.h"

#include <atomic>
#include <chrono>
#include <exception>

#include "futex.h"

namespace shmstore::addon {

Waiter::Waiter(Napi::Env env, Store& store, Napi::Function on_change) : store_(store) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, on_change, "shmstore-waiter", 0, 1);
  tsfn_.Unref(env);  // an idle waiter must not keep the process alive
  thread_ = std::thread([this] { run(); });
}

Waiter::~Waiter() { stop(); }

bool Waiter::halt() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stopping) return false;
    state_->stopping = true;
  }
  wake_thread();
  if (thread_.joinable()) thread_.join();
  return true;
}

void Waiter::stop() {
  if (halt()) tsfn_.Release();
}

void Waiter::abandon() { halt(); }

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
  wake_thread();  // a waiter asleep on an old baseline must look again
}

// Reaches the thread wherever it sleeps: on the condition variable, or in the futex wait
// (which compares wake_word, so a bump just before it sleeps is never lost).
void Waiter::wake_thread() {
  std::atomic_ref<uint32_t>(state_->wake_word).fetch_add(1, std::memory_order_seq_cst);
  futex::wake_local(&state_->wake_word);
  state_->cv.notify_all();
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
  std::atomic_ref<uint32_t> wake_word(state_->wake_word);
  for (;;) {
    const uint32_t woken = wake_word.load(std::memory_order_seq_cst);  // before the checks below
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
        // Until a change anywhere, or wake_thread (a new wait, stop): then look again.
        store_.wait_change_or_local(acked, &state_->wake_word, woken);
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
      // Nothing here should throw (the futex calls do not); if something does, keep serving
      // the pending waits rather than strand them: a thread that exits never wakes JS again.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}
}  // namespace shmstore::addon
