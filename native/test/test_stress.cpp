// Multi-threaded (and one multi-process) stress of one segment. Every worker thread has its own
// Store handle: a handle is not thread-safe, but separate handles of one segment are exactly
// how separate processes behave. Workers create, fill, seal, get, verify, release, remove and
// evict objects over a small id space; an observer checks what must hold at every moment and
// follows the notification ring; a waiter thread shares handle 0 through the calls a handle
// allows from any thread (change_seq, wait_change, wake_local). At the end the counters,
// list() and stats() must agree exactly.
//
// Bounded in time: about 2 s in all (SHMSTORE_STRESS_MS overrides the total).
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "check.h"
#include "test_util.h"

using namespace testutil;
using shmstore::Eviction;
using shmstore::EventType;
using shmstore::ObjectState;
using shmstore::ObjectView;

namespace {

constexpr int kThreads = 4;
constexpr uint64_t kIds = 32;
constexpr uint64_t kMaxSize = 8000;
constexpr size_t kMaxHeld = 6;
const ObjectId kQuitId = make_id(0xdead, 0xff);  // outside the workers' id space

int64_t now_ns() { return shmstore::futex::monotonic_ns(); }

int64_t total_budget_ms() {
  const char* e = std::getenv("SHMSTORE_STRESS_MS");
  const long v = e != nullptr ? std::strtol(e, nullptr, 10) : 0;
  return v > 0 ? v : 2000;
}

// Objects carry their own description in 16 bytes of metadata: the pattern seed and the data
// size. A reader can verify any object it gets without knowing who wrote it.
struct Meta {
  uint64_t seed;
  uint64_t size;
};

struct Counters {
  std::atomic<uint64_t> creates{0}, seals{0}, aborts{0}, verified{0}, removes{0}, evicted{0},
      full{0}, waits_ok{0}, ops{0};
};

// Verifies an object got from the store; reports through CHECK (thread-safe).
bool verify(const ObjectView& v) {
  if (v.metadata_size != sizeof(Meta) || v.metadata != v.data + v.data_size) {
    ::check::report(__FILE__, __LINE__, "object with a foreign metadata layout");
    return false;
  }
  Meta m;
  std::memcpy(&m, v.metadata, sizeof m);
  if (m.size != v.data_size) {
    ::check::report(__FILE__, __LINE__,
                    "metadata says " + std::to_string(m.size) + " bytes, view has " + std::to_string(v.data_size));
    return false;
  }
  if (reinterpret_cast<uintptr_t>(v.data) % 64 != 0) {
    ::check::report(__FILE__, __LINE__, "unaligned data pointer");
    return false;
  }
  if (!has_pattern(v.data, v.data_size, m.seed)) {
    ::check::report(__FILE__, __LINE__, "object bytes changed under a reader (seed " + std::to_string(m.seed) + ")");
    return false;
  }
  return true;
}

bool expected_error(Errc c, bool waits) {
  return c == Errc::ObjectExists || c == Errc::ObjectNotFound || c == Errc::ObjectNotSealed ||
         c == Errc::StoreFull || (waits && c == Errc::Timeout);
}

// One worker: random operations on its own handle until the deadline. `waits` uses the
// blocking variants with short timeouts (for the eviction-none store).
void worker(Store& h, uint64_t worker_id, int64_t deadline, bool waits, Counters& n) {
  std::mt19937_64 rng(worker_id * 0x9e3779b97f4a7c15ULL + 17);
  struct Held {
    ObjectView v;
  };
  std::vector<Held> held;
  uint64_t serial = 0;
  struct alignas(64) CopyBuf {
    uint8_t bytes[Store::kCopyInLockMax];
  };
  const auto copy_buf = std::make_unique<CopyBuf>();
  // A handle holds an object once (a bit per client, not a count): a second get of something
  // already held hands out the same view and must not be released twice.
  auto hold = [&](const ObjectView& v) {
    for (const Held& x : held)
      if (x.v.entry == v.entry && x.v.generation == v.generation) {
        if (x.v.data != v.data) ::check::report(__FILE__, __LINE__, "second get, different memory");
        return;
      }
    held.push_back({v});
  };
  auto release_one = [&](size_t i) {
    verify(held[i].v);  // still intact while held, even if removed meanwhile
    h.release(held[i].v.entry, held[i].v.generation);
    held.erase(held.begin() + static_cast<ptrdiff_t>(i));
  };
  while (now_ns() < deadline) {
    n.ops.fetch_add(1, std::memory_order_relaxed);
    const uint64_t op = rng() % 100;
    const ObjectId id = make_id(rng() % kIds);
    try {
      if (op < 30) {
        const uint64_t size = rng() % 4 == 0 ? rng() % 64 : rng() % kMaxSize;
        const Meta m{(worker_id << 40) | ++serial, size};
        const auto meta = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&m), sizeof m);
        if (rng() % 4 == 0) {  // create + copy + seal in one call (never waits)
          std::vector<uint8_t> bytes(size);
          fill_pattern(bytes.data(), size, m.seed);
          const std::span<const uint8_t> piece(bytes);
          h.put_object(id, {&piece, 1}, meta, false);
          n.creates.fetch_add(1, std::memory_order_relaxed);
          n.seals.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        ObjectView v = waits ? h.create_object_wait(id, size, meta, 2'000'000)
                             : h.create_object(id, size, meta);
        n.creates.fetch_add(1, std::memory_order_relaxed);
        fill_pattern(v.data, size, m.seed);
        if (rng() % 10 == 0) {
          h.abort(id);
          n.aborts.fetch_add(1, std::memory_order_relaxed);
        } else {
          h.seal(id);
          n.seals.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (op < 58) {
        if (held.size() >= kMaxHeld) release_one(0);
        if (auto v = h.get(id)) {
          if (verify(*v)) n.verified.fetch_add(1, std::memory_order_relaxed);
          hold(*v);
        }
      } else if (op < 72) {
        if (!held.empty()) release_one(rng() % held.size());
      } else if (op < 84) {
        h.remove(id);
        n.removes.fetch_add(1, std::memory_order_relaxed);
      } else if (op < 89 && !waits) {  // eviction 'none': space comes only from removes
        n.evicted.fetch_add(h.evict(rng() % 16384), std::memory_order_relaxed);
      } else if (op < 91) {
        (void)h.contains(id);
      } else if (op < 96) {  // a copy, no reference taken (eviction 'none': without the lock)
        uint8_t* out = copy_buf->bytes;
        if (auto r = h.copy_out(id, {out, sizeof copy_buf->bytes}, true); r && r->copied) {
          const ObjectView copy{0, 0, out, r->data_size, out + r->data_size, r->metadata_size};
          if (verify(copy)) n.verified.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        if (held.size() >= kMaxHeld) release_one(0);
        if (auto v = h.get_wait(id, waits ? 2'000'000 : 200'000)) {
          if (verify(*v)) n.waits_ok.fetch_add(1, std::memory_order_relaxed);
          hold(*v);
        }
      }
    } catch (const shmstore::Error& e) {
      if (e.code() == Errc::StoreFull) n.full.fetch_add(1, std::memory_order_relaxed);
      if (!expected_error(e.code(), waits))
        ::check::report(__FILE__, __LINE__, std::string("worker: unexpected ") +
                                                shmstore::code_name(e.code()) + ": " + e.what());
    }
  }
  while (!held.empty()) release_one(held.size() - 1);
}

// What must hold at any moment, from one stats() snapshot.
void check_snapshot(const shmstore::StoreStats& st) {
  CHECK(st.used_bytes <= st.capacity);
  CHECK(st.largest_free <= st.capacity - st.used_bytes);
  CHECK(st.objects <= st.max_objects);
  CHECK(st.objects + st.deleting <= st.max_objects);
  CHECK(st.sealed <= st.objects);
  CHECK(st.clients <= st.max_clients);
  CHECK(st.free_extents <= st.max_objects + 1);
  CHECK(st.used_bytes % 64 == 0);
}

// The end state: counters, list() and stats() agree exactly.
void check_final(Store& s) {
  const auto st = s.stats();
  const auto list = s.list();
  uint64_t bytes = 0;
  uint32_t sealed = 0;
  for (const auto& o : list) {
    bytes += alloc_size(o.data_size, o.metadata_size);
    CHECK(o.state == ObjectState::Sealed);  // nothing unsealed or half-deleted is left
    CHECK_EQ(o.holders, 0u);
    if (o.state == ObjectState::Sealed) ++sealed;
    auto v = s.get(o.id);
    REQUIRE(v.has_value());
    verify(*v);
    s.release(v->entry, v->generation);
  }
  CHECK_EQ(st.used_bytes, bytes);
  CHECK_EQ(st.objects, list.size());
  CHECK_EQ(st.sealed, sealed);
  CHECK_EQ(st.deleting, 0u);
  CHECK_EQ(st.clients, 1u);
  // Every create ended as a live object, an abort, a delete or an eviction; every seal as a
  // live sealed object, a delete or an eviction; every seal, delete and eviction is one event.
  CHECK_EQ(st.creates, st.objects + st.aborts + st.deletes + st.evictions);
  CHECK_EQ(st.seals, st.sealed + st.deletes + st.evictions);
  CHECK_EQ(st.notify_head, st.seals + st.deletes + st.evictions);
  CHECK_EQ(st.repairs, 0u);
  CHECK_EQ(st.reclaimed_clients, 0u);

  for (const auto& o : list) s.remove(o.id);
  const auto end = s.stats();
  CHECK_EQ(end.used_bytes, 0u);
  CHECK_EQ(end.objects, 0u);
  CHECK_EQ(end.free_extents, 1u);
  CHECK_EQ(end.largest_free, end.capacity);
}

void run_stress(Eviction eviction, int64_t budget_ms, bool with_process) {
  ShmName name(eviction == Eviction::Lru ? "stress-lru" : "stress-none");
  // The 'none' store is small, so creates run into StoreFull and wait for removes.
  StoreOptions o = options(eviction == Eviction::Lru ? 256 << 10 : 64 << 10, 48, 16, eviction);
  o.notify_capacity = 64;  // small: the observer falls behind and must be told so
  auto s = Store::create(name, o);
  const int64_t deadline = now_ns() + budget_ms * 1'000'000;

  // A separate process doing the same (forked before any thread exists).
  Child proc;
  if (with_process) {
    proc = spawn([&](int out) {
      Counters pc;
      auto h = Store::open(name);
      write_line(out, "ready");
      worker(*h, 1000, deadline, eviction == Eviction::None, pc);
      write_line(out, ::check::current_failures().load() == 0 && pc.ops > 0 ? "clean" : "failed");
      // Stay attached until the parent has checked the end state: a detach tidies up after
      // others (frees unheld Deleting entries) and could hide a leak.
      auto quit = h->get_wait(kQuitId, 60'000'000'000);
      if (quit) h->release(quit->entry, quit->generation);
      h.reset();
    });
    CHECK_EQ(read_line(proc.read_fd, 20'000), "ready");
  }

  Counters n;
  std::vector<std::unique_ptr<Store>> handles;
  for (int t = 0; t < kThreads; ++t) handles.push_back(Store::open(name));

  std::atomic<bool> stop_waiter{false};
  std::atomic<uint64_t> wakeups{0};
  std::thread waiter([&] {
    Store& h = *handles[0];  // shares handle 0 with worker 0: only the thread-safe calls
    while (!stop_waiter.load()) {
      const uint32_t seen = h.change_seq();
      const timespec d = shmstore::futex::deadline_after_ns(50'000'000);
      if (h.wait_change(seen, &d)) wakeups.fetch_add(1);
    }
  });

  std::atomic<uint64_t> observed_events{0}, missed_events{0};
  auto observer_handle = Store::open(name);  // outlives the end-state check below
  std::thread observer([&] {
    Store* h = observer_handle.get();
    uint64_t next = 0;
    while (now_ns() < deadline) {
      check_snapshot(h->stats());
      uint64_t missed = 0;
      const auto ev = h->read_events(next, 1000, missed);
      missed_events += missed;
      uint64_t expect = next + missed;
      for (const auto& e : ev) {
        CHECK_EQ(e.seq, expect);
        CHECK(e.type == EventType::Sealed || e.type == EventType::Deleted);
        CHECK(e.id[19] == 0x5a);  // an id some worker used
        ++expect;
      }
      observed_events += ev.size();
      next = expect;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      try {
        worker(*handles[t], static_cast<uint64_t>(t) + 1, deadline, eviction == Eviction::None, n);
      } catch (const std::exception& e) {
        ::check::report(__FILE__, __LINE__, std::string("worker threw: ") + e.what());
      }
    });
  for (auto& w : workers) w.join();
  observer.join();
  stop_waiter = true;  // the waiter's 50 ms deadline bounds how long this takes
  waiter.join();

  if (with_process) CHECK_EQ(read_line(proc.read_fd, 20'000), "clean");

  // Every reference is released and no handle has closed since: no holders, no Deleting
  // entries (the last release of a removed object frees it), and the bytes add up.
  uint64_t bytes = 0;
  for (const auto& info : s->list()) {
    CHECK_EQ(info.holders, 0u);
    CHECK(info.state != ObjectState::Deleting);
    bytes += alloc_size(info.data_size, info.metadata_size);
  }
  CHECK_EQ(s->stats().deleting, 0u);
  CHECK_EQ(s->stats().used_bytes, bytes);

  if (with_process) {
    put(*s, kQuitId, 0);
    const int status = reap(proc);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s->remove(kQuitId);
  }
  handles.clear();
  observer_handle.reset();

  std::printf("  %s: %llu ops, %llu creates, %llu verified gets, %llu waited gets, %llu removes, "
              "%llu evicted bytes, %llu full, %llu events seen, %llu missed, %llu wakeups\n",
              eviction == Eviction::Lru ? "lru" : "none",
              static_cast<unsigned long long>(n.ops.load()), static_cast<unsigned long long>(n.creates.load()),
              static_cast<unsigned long long>(n.verified.load()), static_cast<unsigned long long>(n.waits_ok.load()),
              static_cast<unsigned long long>(n.removes.load()), static_cast<unsigned long long>(n.evicted.load()),
              static_cast<unsigned long long>(n.full.load()), static_cast<unsigned long long>(observed_events.load()),
              static_cast<unsigned long long>(missed_events.load()), static_cast<unsigned long long>(wakeups.load()));
  // The run did real work (not a vacuous pass).
  CHECK(n.creates > 0);
  CHECK(n.seals > 0);
  CHECK(n.verified > 0);
  CHECK(n.removes > 0);
  CHECK(observed_events + missed_events > 0);
  if (eviction == Eviction::None) {
    CHECK(n.full > 0);  // the waiting path was exercised
    CHECK_EQ(s->stats().evictions, 0u);
  }
  check_final(*s);
}

}  // namespace

TEST(stress_lru_threads_and_a_process) { run_stress(Eviction::Lru, total_budget_ms() * 5 / 10, true); }

TEST(stress_eviction_none_with_waits) { run_stress(Eviction::None, total_budget_ms() * 3 / 10, false); }

// The seqlock: readers copy_out (no lock, eviction 'none') a few ids that two writers keep
// putting, creating, aborting, removing and evicting, so the memory under a read is freed and
// reused all the time; halfway a process dies holding the lock (table_seq left odd, then
// repaired). Every copy a reader gets must be one whole object, and no reader may fail.
TEST(seqlock_readers_copy_whole_objects_or_nothing) {
  ShmName name("seqlock");
  auto owner = Store::create(name, options(1 << 16, 32, 16, Eviction::None));
  const int64_t budget_ms = total_budget_ms() * 2 / 10;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> verified{0}, torn{0}, reader_errors{0};
  std::vector<std::thread> threads;
  for (uint64_t w = 1; w <= 2; ++w) {
    threads.emplace_back([&, w] {
      auto h = Store::open(name);
      std::mt19937_64 rng(w);
      std::vector<uint8_t> bytes(20000);
      uint64_t serial = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const ObjectId id = make_id(rng() % 6);
        const uint64_t op = rng() % 10;
        try {
          const uint64_t size = rng() % (op < 4 ? 9000 : 20000);
          const Meta m{(w << 40) | ++serial, size};
          const auto meta = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&m), sizeof m);
          if (op < 4) {  // small puts copy under the lock, in two pieces
            fill_pattern(bytes.data(), size, m.seed);
            const std::span<const uint8_t> all(bytes.data(), size);
            const std::span<const uint8_t> pieces[] = {all.first(size / 3), all.subspan(size / 3)};
            h->put_object(id, pieces, meta, false);
          } else if (op < 6) {  // bytes written outside the lock, before the seal
            const ObjectView v = h->create_object(id, size, meta);
            fill_pattern(v.data, size, m.seed);
            if (rng() % 5 == 0) h->abort(id);
            else h->seal(id);
          } else if (op < 9) {
            h->remove(id);
          } else {
            h->evict(rng() % 4096);
          }
        } catch (const shmstore::Error& e) {
          if (!expected_error(e.code(), false))
            ::check::report(__FILE__, __LINE__, std::string("writer: unexpected ") + e.what());
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto h = Store::open(name);
      std::mt19937_64 rng(100 + r);
      struct alignas(64) Out {
        uint8_t bytes[Store::kCopyInLockMax];
      };
      const auto out = std::make_unique<Out>();
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          const auto c = h->copy_out(make_id(rng() % 6), {out->bytes, sizeof out->bytes}, true);
          if (!c || !c->copied) continue;
          const ObjectView copy{0, 0, out->bytes, c->data_size, out->bytes + c->data_size, c->metadata_size};
          (verify(copy) ? verified : torn).fetch_add(1, std::memory_order_relaxed);
        } catch (const shmstore::Error& e) {
          reader_errors.fetch_add(1, std::memory_order_relaxed);
          ::check::report(__FILE__, __LINE__, std::string("reader: ") + e.what());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(budget_ms / 2));
  Child parked = spawn([&](int out) {
    auto h = Store::open(name);
    h->park_in_lock_for_test([&] { write_line(out, "parked"); });
  });
  CHECK_EQ(read_line(parked.read_fd, 10'000), std::string("parked"));
  kill_and_reap(parked);
  std::this_thread::sleep_for(std::chrono::milliseconds(budget_ms / 2));
  stop.store(true);
  for (auto& t : threads) t.join();
  std::printf("  seqlock: %llu whole copies, %llu torn, %llu reader errors\n",
              static_cast<unsigned long long>(verified.load()), static_cast<unsigned long long>(torn.load()),
              static_cast<unsigned long long>(reader_errors.load()));
  CHECK(verified.load() > 0);
  CHECK_EQ(torn.load(), 0u);
  check_accounting(*owner);
}
