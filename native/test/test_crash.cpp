// Crash recovery across real processes: a forked child opens its own handle of the store, does
// something, tells the parent over a pipe, and is killed with SIGKILL. The parent checks that
// the dead client's references, unsealed objects, cursors and slot are reclaimed, and that a
// death inside the lock (EOWNERDEAD) is repaired without a deadlock.
//
// After fork the child never touches a handle of the parent: it opens its own Store.
#include <signal.h>
#include <sys/wait.h>

#include <random>
#include <thread>

#include "check.h"
#include "test_util.h"

using namespace testutil;
using shmstore::Eviction;
using shmstore::ObjectState;
using shmstore::ObjectView;

namespace {

constexpr int kReadyTimeoutMs = 20'000;


// Expects the child's first line to be `want` (or to start with it).
std::string expect_ready(Child& c, const std::string& want) {
  const std::string line = read_line(c.read_fd, kReadyTimeoutMs);
  if (line.rfind(want, 0) != 0) {
    ::check::report(__FILE__, __LINE__, "child said '" + line + "', expected '" + want + "'");
    kill_and_reap(c);
    throw ::check::Abort{};
  }
  return line;
}

void expect_killed(int status) {
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK_EQ(WTERMSIG(status), SIGKILL);
}

// Makes the store fill and free everything: proves the allocator is whole.
void check_allocator_is_whole(Store& s) {
  const auto st = s.stats();
  CHECK_EQ(st.used_bytes, 0u);
  CHECK_EQ(st.free_extents, 1u);
  CHECK_EQ(st.largest_free, st.capacity);
  put(s, make_id(999'999), st.capacity, 5);  // the whole data region in one piece
  auto v = s.get(make_id(999'999));
  REQUIRE(v.has_value());
  CHECK(has_pattern(v->data, v->data_size, 5));
  s.release(v->entry, v->generation);
  s.remove(make_id(999'999));
  CHECK_EQ(s.stats().used_bytes, 0u);
}

}  // namespace

TEST(references_of_a_killed_client_are_reclaimed) {
  ShmName name("refs");
  auto s = Store::create(name, options(1 << 20, 64, 8));
  const ObjectId A = make_id(1), B = make_id(2), C = make_id(3);
  put(*s, A, 1000, 1);
  put(*s, B, 2000, 2);
  put(*s, C, 3000, 3);

  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    auto a = h->get(A);
    auto b = h->get(B);
    if (!a || !b) throw std::runtime_error("objects missing in the child");
    h->set_cursor(77, 5);
    write_line(out, "ready " + std::to_string(h->slot()));
    for (;;) ::pause();
  });
  expect_ready(child, "ready");

  auto list = s->list();
  CHECK_EQ(find_info(list, A)->holders, 1u);
  CHECK_EQ(find_info(list, B)->holders, 1u);
  CHECK_EQ(find_info(list, C)->holders, 0u);
  CHECK_EQ(s->stats().clients, 2u);
  CHECK(s->cursor_values(77) == std::vector<uint64_t>{5});
  CHECK(!s->remove(A));  // deferred: the child holds it
  CHECK_EQ(s->stats().deleting, 1u);
  CHECK_EQ(s->stats().reclaimed_clients, 0u);  // alive: not reclaimed

  expect_killed(kill_and_reap(child));

  const auto st = s->stats();  // reclaims
  CHECK_EQ(st.clients, 1u);
  CHECK_EQ(st.reclaimed_clients, 1u);
  CHECK_EQ(st.deleting, 0u);  // A was freed with the dead client's reference
  CHECK_EQ(st.objects, 2u);
  CHECK_EQ(st.used_bytes, alloc_size(2000, 0) + alloc_size(3000, 0));
  list = s->list();
  CHECK(find_info(list, A) == nullptr);
  REQUIRE(find_info(list, B) != nullptr);
  CHECK_EQ(find_info(list, B)->holders, 0u);
  CHECK(s->cursor_values(77).empty());
  CHECK_EQ(s->clients().size(), 1u);
  check_accounting(*s);

  // B is evictable again (C, untouched since its seal, is the least recently used).
  CHECK_EQ(s->evict(1), alloc_size(3000, 0));
  CHECK_EQ(s->evict(1), alloc_size(2000, 0));
  CHECK(s->list().empty());
  check_allocator_is_whole(*s);
}

TEST(unsealed_object_of_a_killed_client_is_aborted) {
  ShmName name("unsealed");
  auto s = Store::create(name, options(1 << 20, 64, 8));
  const ObjectId X = make_id(10);
  put(*s, make_id(11), 100, 11);
  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    ObjectView v = h->create_object(X, 5000, as_bytes("meta"));
    fill_pattern(v.data, v.data_size, 10);
    write_line(out, "ready " + std::to_string(h->slot()));
    for (;;) ::pause();
  });
  const std::string line = expect_ready(child, "ready");
  const uint32_t child_slot = static_cast<uint32_t>(std::stoul(line.substr(6)));

  auto list = s->list();
  REQUIRE(find_info(list, X) != nullptr);
  CHECK(find_info(list, X)->state == ObjectState::Created);
  CHECK_EQ(find_info(list, X)->creator_slot, child_slot);
  CHECK(!s->contains(X));
  CHECK_THROWS_CODE(s->abort(X), Errc::NotCreator);
  CHECK(!s->get_wait(X, 20'000'000).has_value());

  expect_killed(kill_and_reap(child));

  const auto before = s->stats();  // reclaims
  CHECK_EQ(before.aborts, 1u);
  CHECK_EQ(before.objects, 1u);
  CHECK_EQ(before.used_bytes, alloc_size(100, 0));
  CHECK_EQ(before.reclaimed_clients, 1u);
  CHECK(find_info(s->list(), X) == nullptr);
  // The id is free for anyone.
  put(*s, X, 10, 12);
  CHECK(s->contains(X));
  check_accounting(*s);
}

// Reclaim also happens when an allocation would fail, without anyone calling stats().
TEST(dead_client_is_reclaimed_when_space_runs_out) {
  ShmName name("reclaim-alloc");
  auto s = Store::create(name, options(8192, 16, 8, Eviction::None));
  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    h->create_object(make_id(1), 8192, {});  // the whole store, never sealed
    write_line(out, "ready");
    for (;;) ::pause();
  });
  expect_ready(child, "ready");
  CHECK_THROWS_CODE(s->create_object(make_id(2), 64, {}), Errc::StoreFull);
  expect_killed(kill_and_reap(child));
  CHECK_NOTHROW(put(*s, make_id(2), 4096, 2));
  auto st = s->stats();
  CHECK_EQ(st.reclaimed_clients, 1u);
  CHECK_EQ(st.aborts, 1u);
  CHECK_EQ(st.used_bytes, 4096u);
  check_accounting(*s);
}

// And when a process opens the store: its slot is free again even at max_clients.
TEST(dead_client_is_reclaimed_at_open) {
  ShmName name("reclaim-open");
  auto s = Store::create(name, options(1 << 16, 16, 2));
  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    h->create_object(make_id(1), 1000, {});
    write_line(out, "ready");
    for (;;) ::pause();
  });
  expect_ready(child, "ready");
  CHECK_THROWS_CODE(Store::open(name), Errc::TooManyClients);
  expect_killed(kill_and_reap(child));
  std::unique_ptr<Store> h;
  CHECK_NOTHROW(h = Store::open(name));
  REQUIRE(h != nullptr);
  // The open reclaimed (list() itself does not).
  CHECK(s->list().empty());
  CHECK_EQ(s->stats().clients, 2u);
  CHECK_EQ(s->stats().reclaimed_clients, 1u);
}

// A client killed while holding the store lock, halfway through an allocation (the test hook
// claims an entry and marks it Created without touching the extents, index or counters).
// The next locker gets EOWNERDEAD and must rebuild everything from the entries.
void crash_inside_the_lock(const char* first_call) {
  ShmName name("owner-dead");
  auto s = Store::create(name, options(1 << 16, 32, 8));
  const ObjectId A = make_id(1), B = make_id(2), C = make_id(3);
  put(*s, A, 1000, 1);   // [0, 1024)
  put(*s, C, 1000, 3);   // [1024, 2048)
  put(*s, B, 2000, 2);   // [2048, 4096)
  s->remove(C);          // free: [1024, 2048) and [4096, 65536)
  auto held = s->get(B);  // the parent holds B across the repair
  REQUIRE(held.has_value());
  const auto before = s->stats();
  CHECK_EQ(before.free_extents, 2u);

  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    h->park_in_lock_for_test([&] { write_line(out, "parked " + std::to_string(h->slot())); });
  });
  expect_ready(child, "parked");
  expect_killed(kill_and_reap(child));

  std::unique_ptr<Store> other;
  {
    Watchdog watchdog(30);  // a deadlock ends the test with a message, not a ctest timeout
    const std::string first(first_call);
    if (first == "stats") {
      s->stats();
    } else if (first == "create") {
      put(*s, make_id(4), 500, 4);
    } else if (first == "open") {
      other = Store::open(name);
    } else if (first == "get") {
      auto v = s->get(A);
      REQUIRE(v.has_value());
      CHECK(has_pattern(v->data, v->data_size, 1));
      s->release(v->entry, v->generation);
    }
  }

  const auto st = s->stats();
  CHECK_EQ(st.repairs, before.repairs + 1);
  CHECK_EQ(st.reclaimed_clients, before.reclaimed_clients + 1);
  CHECK_EQ(st.aborts, before.aborts + 1);  // the half-made object, aborted with its client
  CHECK_EQ(st.clients, other ? 2u : 1u);
  const bool created = std::string(first_call) == "create";
  CHECK_EQ(st.objects, created ? 3u : 2u);
  CHECK_EQ(st.sealed, created ? 3u : 2u);
  CHECK_EQ(st.used_bytes, alloc_size(1000, 0) + alloc_size(2000, 0) + (created ? alloc_size(500, 0) : 0));
  ObjectId ghost;
  ghost.fill(0xee);
  CHECK(find_info(s->list(), ghost) == nullptr);
  CHECK(!s->contains(ghost));
  check_accounting(*s);

  // The parent's reference survived the repair and still works.
  CHECK_EQ(find_info(s->list(), B)->holders, 1u);
  CHECK(has_pattern(held->data, held->data_size, 2));
  s->release(held->entry, held->generation);
  CHECK_THROWS_CODE(s->release(held->entry, held->generation), Errc::ObjectNotFound);

  // The lock is healthy again: many more operations, from two handles.
  auto h2 = Store::open(name);
  for (int i = 0; i < 20; ++i) {
    put(*h2, make_id(100 + i), 700, 100 + i);
    auto v = s->get(make_id(100 + i));
    REQUIRE(v.has_value());
    CHECK(has_pattern(v->data, v->data_size, 100 + i));
    s->release(v->entry, v->generation);
  }
  auto a = s->get(A);
  REQUIRE(a.has_value());
  CHECK(has_pattern(a->data, a->data_size, 1));
  s->release(a->entry, a->generation);
  check_accounting(*s);
  CHECK_EQ(s->stats().repairs, before.repairs + 1);  // no further repairs

  for (const auto& o : s->list()) s->remove(o.id);
  check_allocator_is_whole(*s);
}

TEST(crash_inside_the_lock_then_stats) { crash_inside_the_lock("stats"); }
TEST(crash_inside_the_lock_then_create) { crash_inside_the_lock("create"); }
TEST(crash_inside_the_lock_then_open) { crash_inside_the_lock("open"); }
TEST(crash_inside_the_lock_then_get) { crash_inside_the_lock("get"); }

// A waiter in another thread of the parent must not stay blocked forever behind a lock whose
// owner died: it is woken by a change and its next call repairs.
TEST(crash_inside_the_lock_with_a_waiting_thread) {
  ShmName name("owner-dead-wait");
  auto s = Store::create(name, options(1 << 16, 32, 8));
  Child child = spawn([&](int out) {
    auto h = Store::open(name);
    h->park_in_lock_for_test([&] { write_line(out, "parked"); });
  });
  expect_ready(child, "parked");
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto w = Store::open(name);  // blocks on the dead owner's lock until the kill, then repairs
    auto v = w->get_wait(make_id(7), 20'000'000'000);
    if (v) {
      got = has_pattern(v->data, v->data_size, 7);
      w->release(v->entry, v->generation);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  expect_killed(kill_and_reap(child));
  {
    Watchdog watchdog(30);
    put(*s, make_id(7), 300, 7);
    waiter.join();
  }
  CHECK(got.load());
  CHECK_EQ(s->stats().repairs, 1u);
  check_accounting(*s);
}

// Kill a busy client at random moments (inside or outside the lock) many times; after each
// death the store must be consistent, every sealed object intact and nothing of the dead
// client left (no holders, no unsealed objects).
TEST(random_kills_of_a_busy_client) {
  ShmName name("random-kill");
  auto s = Store::create(name, options(1 << 18, 64, 8));
  std::mt19937_64 rng(12345);
  uint64_t repairs_seen = 0;
  for (int round = 0; round < 12; ++round) {
    Child child = spawn([&, round](int out) {
      auto h = Store::open(name);
      std::mt19937_64 r(static_cast<uint64_t>(round) * 7919 + 1);
      std::vector<ObjectView> held;
      write_line(out, "ready");
      for (uint64_t n = 0;; ++n) {
        const uint64_t k = r() % 48;
        const ObjectId id = make_id(k, static_cast<uint8_t>(round));
        try {
          switch (r() % 5) {
            case 0:
            case 1: {
              const uint64_t size = r() % 6000;
              ObjectView v = h->create_object(id, size, {});
              fill_pattern(v.data, size, k * 1000 + static_cast<uint64_t>(round));
              if (r() % 8 != 0) h->seal(id);  // some stay unsealed
              break;
            }
            case 2:
              if (auto v = h->get(id)) held.push_back(*v);
              break;
            case 3:
              if (!held.empty()) {
                h->release(held.back().entry, held.back().generation);
                held.pop_back();
              }
              break;
            case 4:
              h->remove(id);
              break;
          }
        } catch (const shmstore::Error& e) {
          if (e.code() != Errc::ObjectExists && e.code() != Errc::ObjectNotFound &&
              e.code() != Errc::ObjectNotSealed && e.code() != Errc::StoreFull)
            throw;
        }
      }
    });
    expect_ready(child, "ready");
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 30000));
    expect_killed(kill_and_reap(child));

    Watchdog watchdog(30);
    const auto st = s->stats();
    repairs_seen = st.repairs;
    CHECK_EQ(st.clients, 1u);
    check_accounting(*s);
    for (const auto& o : s->list()) {
      CHECK(o.state == ObjectState::Sealed);  // no unsealed leftovers, no Deleting ones
      CHECK_EQ(o.holders, 0u);
      auto v = s->get(o.id);
      REQUIRE(v.has_value());
      const uint64_t k = o.id[0];
      CHECK(has_pattern(v->data, v->data_size, k * 1000 + o.id[8]));
      s->release(v->entry, v->generation);
    }
  }
  CHECK_EQ(s->stats().reclaimed_clients, 12u);
  std::printf("  (repairs after 12 random kills: %llu)\n", static_cast<unsigned long long>(repairs_seen));
  for (const auto& o : s->list()) s->remove(o.id);
  check_allocator_is_whole(*s);
}
