#include "waiter.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "futex.h"

namespace shmstore::addon {

namespace {

using State = Waiter::State;

// The process's waiter thread and the handles it serves.
class Hub {
 public:
  // Never destroyed: its thread lives as long as the process.
  static Hub& get() {
    static Hub* const hub = new Hub;
    return *hub;
  }

  void add(const std::shared_ptr<State>& s) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
      states_.push_back(s);
      ++version_;
    }
    poke();
  }

  // Returns once the thread has taken a snapshot of the handles without `s`: from then on it
  // neither reads s's store nor calls s's thread-safe function. Again: returns at once.
  void remove(const std::shared_ptr<State>& s) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (std::erase(states_, s) == 0) return;
    const uint64_t wanted = ++version_;
    lock.unlock();
    poke();
    lock.lock();
    cv_.wait(lock, [&] { return snapshot_version_ >= wanted; });
  }

  // Changes a handle's fields under the lock, then has the thread look again.
  template <typename Update>
  void update(const std::shared_ptr<State>& s, Update update) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      update(*s);
    }
    poke();
  }

 private:
  // Reaches the thread wherever it sleeps: on the condition variable, or in the futex wait
  // (which compares wake_word_, read under the lock with the snapshot, so a bump made after
  // the snapshot is never slept through).
  void poke() {
    std::atomic_ref<uint32_t>(wake_word_).fetch_add(1, std::memory_order_seq_cst);
    // seq_cst with the thread's store of sleeping_ before it waits: either it sees the bump
    // above, or we see it sleeping and wake it.
    if (sleeping_.load(std::memory_order_seq_cst)) futex::wake_local(&wake_word_);
    cv_.notify_all();
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      try {
        step(lock);
      } catch (...) {
        // Nothing here should throw but an allocation; keep serving the pending waits rather
        // than strand them: a thread that exits never wakes JS again.
        if (lock.owns_lock()) lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        lock.lock();
      }
    }
  }

  // One round, entered and left with the lock held: deliver what changed, or sleep until
  // something does or poke() is called.
  void step(std::unique_lock<std::mutex>& lock) {
    // The handles with waits pending and no notification in flight, from JS's baseline.
    watched_.clear();
    watches_.clear();
    for (const auto& s : states_) {
      if (!s->active || s->in_flight) continue;
      watched_.push_back(s.get());
      watches_.push_back({s->store, s->acked});
    }
    snapshot_version_ = version_;
    cv_.notify_all();  // a remove() waiting for this snapshot
    if (watched_.empty()) {
      cv_.wait(lock);
      return;
    }
    const uint32_t woken = std::atomic_ref<uint32_t>(wake_word_).load(std::memory_order_seq_cst);
    lock.unlock();
    bool notified = false, failed = false;
    for (size_t i = 0; i < watched_.size(); ++i) {
      const uint32_t now = watches_[i].store->change_seq();
      if (now != watches_[i].seen) {
        notified = true;
        failed |= !notify(lock, watched_[i], now);
      }
    }
    if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // then try again
    if (!notified) {
      sleeping_.store(true, std::memory_order_seq_cst);
      Store::wait_any_change(watches_, &wake_word_, woken);  // a change, or a poke
      sleeping_.store(false, std::memory_order_relaxed);
    }
    lock.lock();
  }

  // Tells s's JS thread that its store moved to `now` (the lock is not held). False if the call
  // could not be queued for a reason that may pass.
  bool notify(std::unique_lock<std::mutex>& lock, State* s, uint32_t now) {
    lock.lock();
    s->in_flight = true;
    lock.unlock();
    // The call may run after the Waiter is gone: it keeps the State alive.
    auto call = [st = s->shared_from_this(), now](Napi::Env env, Napi::Function fn) {
      if (env != nullptr && !fn.IsEmpty()) {
        // The plain Node-API call: in an environment being torn down (a terminated worker) it
        // fails, which node-addon-api's Function::Call would turn into a fatal error.
        napi_value arg, recv, result;
        if (napi_create_uint32(env, now, &arg) == napi_ok && napi_get_undefined(env, &recv) == napi_ok)
          napi_call_function(env, recv, fn, 1, &arg, &result);
      }
      // Even if fn threw (the exception stays pending for Node): watch again from `now`.
      Hub::get().update(st, [now](State& state) {
        state.acked = now;
        state.in_flight = false;
      });
    };
    napi_status status = napi_generic_failure;
    try {
      status = s->tsfn.NonBlockingCall(call);
    } catch (...) {  // an allocation
    }
    if (status == napi_ok) return true;
    lock.lock();
    s->in_flight = false;
    // Closing: its environment is going away. Stop watching it until it unregisters.
    if (status == napi_closing) s->active = false;
    lock.unlock();
    return status == napi_closing;
  }

  std::mutex mutex_;  // guards everything below and every State's fields
  std::condition_variable cv_;
  std::vector<std::shared_ptr<State>> states_;
  uint64_t version_ = 0;           // bumped by add and remove
  uint64_t snapshot_version_ = 0;  // version_ as of the thread's current snapshot
  std::thread thread_;
  // The thread's snapshot. Plain pointers: remove() waits until a snapshot is without its State.
  std::vector<State*> watched_;
  std::vector<Store::ChangeWatch> watches_;
  uint32_t wake_word_ = 0;  // process-local futex word (atomic_ref): bumped by poke()
  std::atomic<bool> sleeping_{false};
};

}  // namespace

Waiter::Waiter(Napi::Env env, Store& store, Napi::Function on_change) : state_(std::make_shared<State>(&store)) {
  // Node deletes a thread-safe function at environment teardown (a worker's end, process
  // exit) before this object is destroyed: the finalizer unregisters it first, so the thread
  // never calls one that is gone.
  state_->tsfn = Napi::ThreadSafeFunction::New(env, on_change, "shmstore-waiter", 0, 1,
                                               [st = state_](Napi::Env) { Hub::get().remove(st); });
  if (static_cast<napi_threadsafe_function>(state_->tsfn) == nullptr)
    throw std::runtime_error("could not create a thread-safe function");
  state_->tsfn.Unref(env);  // an idle handle must not keep the process alive
  try {
    Hub::get().add(state_);
  } catch (...) {
    state_->tsfn.Release();
    throw;
  }
  registered_ = true;
}

Waiter::~Waiter() { stop(); }

bool Waiter::unregister() {
  if (!registered_) return false;
  registered_ = false;
  Hub::get().remove(state_);
  return true;
}

void Waiter::stop() {
  if (unregister()) state_->tsfn.Release();
}

void Waiter::abandon() { unregister(); }

void Waiter::activate(Napi::Env env, uint32_t seen) {
  if (!registered_) return;
  Hub::get().update(state_, [seen](State& s) {
    if (!s.active) s.acked = seen;  // from idle: JS's own check is the baseline
    s.active = true;
  });
  // Pending waits keep the process alive, as a pending timer would.
  if (!referenced_) {
    state_->tsfn.Ref(env);
    referenced_ = true;
  }
}

}  // namespace shmstore::addon
