// Functional conformance of the core: the Plasma calls, their errors, eviction, waits,
// notifications, cursors, clients and the accounting invariants.
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "check.h"
#include "test_util.h"

using namespace testutil;
using shmstore::Eviction;
using shmstore::EventType;
using shmstore::ObjectState;
using shmstore::ObjectView;

namespace {

constexpr int64_t kMs = 1'000'000;

int64_t now_ns() { return shmstore::futex::monotonic_ns(); }

void check_view_pattern(const ObjectView& v, uint64_t size, uint64_t seed) {
  CHECK_EQ(v.data_size, size);
  CHECK(has_pattern(v.data, v.data_size, seed));
}


}  // namespace

// ---- create / open / unlink ----------------------------------------------------------------

TEST(create_open_unlink) {
  ShmName name("basic");
  auto a = Store::create(name, options(1 << 20));
  REQUIRE(a != nullptr);
  CHECK(name.exists());
  CHECK_EQ(a->name(), name.str());
  CHECK_EQ(a->capacity(), uint64_t{1} << 20);
  struct stat st{};
  REQUIRE(::stat(name.path().c_str(), &st) == 0);
  CHECK_EQ(st.st_mode & 0777, 0600u);  // the default mode, whatever the umask
  CHECK(static_cast<uint64_t>(st.st_size) > (uint64_t{1} << 20));

  auto b = Store::open(name);
  CHECK(b->slot() != a->slot());
  CHECK_EQ(b->capacity(), a->capacity());
  CHECK_EQ(a->stats().clients, 2u);

  put(*a, make_id(1), 100, 7);
  auto v = b->get(make_id(1));
  REQUIRE(v.has_value());
  check_view_pattern(*v, 100, 7);
  b->release(v->entry, v->generation);

  // Unlink: the name goes at once, mapped handles go on working.
  Store::unlink(name);
  CHECK(!name.exists());
  CHECK_THROWS_CODE(Store::open(name), Errc::StoreNotFound);
  CHECK_THROWS_CODE(Store::unlink(name), Errc::StoreNotFound);
  put(*b, make_id(2), 10, 8);
  CHECK(a->contains(make_id(2)));

  // The name is free again: a new store there is a different segment.
  auto c = Store::create(name, options(4096));
  CHECK(!c->contains(make_id(1)));
  CHECK_EQ(c->stats().clients, 1u);
  CHECK(a->contains(make_id(1)));
}

// How many of the pages of [p, p + n) have a page-table entry in this process
// (/proc/self/pagemap, bit 63: present).
const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

size_t pages_mapped(const uint8_t* p, size_t n) {
  const auto first = reinterpret_cast<uintptr_t>(p) / kPage, last = (reinterpret_cast<uintptr_t>(p) + n - 1) / kPage;
  std::vector<uint64_t> entries(last - first + 1);
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const auto bytes = static_cast<ssize_t>(entries.size() * sizeof(uint64_t));
  const ssize_t got = ::pread(fd, entries.data(), bytes, static_cast<off_t>(first * sizeof(uint64_t)));
  ::close(fd);
  REQUIRE(got == bytes);
  return static_cast<size_t>(std::count_if(entries.begin(), entries.end(), [](uint64_t e) { return (e >> 63) != 0; }));
}

// prefault fills this handle's page tables; a lazy handle gets an entry per page on first touch.
TEST(prefault_maps_every_page) {
  ShmName name("prefault");
  constexpr uint64_t kSize = 4 << 20;
  auto lazy = Store::create(name, options(kSize));
  auto eager = Store::open(name);
  eager->prefault();
  const auto object = [](Store& s) { return s.create_object(make_id(1), kSize, {}); };
  const auto in_lazy = object(*lazy);
  CHECK(pages_mapped(in_lazy.data, kSize) < kSize / kPage / 2);  // create touches no data page
  lazy->abort(make_id(1));
  const auto in_eager = object(*eager);
  CHECK_EQ(pages_mapped(in_eager.data, kSize), kSize / kPage);
  eager->abort(make_id(1));
}

// An opener racing the creator waits for the magic: it sees StoreNotFound (no file yet) or a
// complete store, never a half-built one.
TEST(open_racing_create) {
  for (int round = 0; round < 20; ++round) {
    ShmName name("race");
    std::atomic<bool> go{false};
    std::thread creator([&] {
      while (!go) {
      }
      auto s = Store::create(name, options(1 << 20, 256));
      put(*s, make_id(1), 100, 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
    go = true;
    std::unique_ptr<Store> h;
    const int64_t t0 = now_ns();
    while (!h && now_ns() - t0 < 10'000 * kMs) {
      try {
        h = Store::open(name);
      } catch (const shmstore::Error& e) {
        if (e.code() != Errc::StoreNotFound) {
          ::check::report(__FILE__, __LINE__, std::string("open during create: ") + e.what());
          break;
        }
      }
    }
    creator.join();
    REQUIRE(h != nullptr);
    CHECK_EQ(h->capacity(), uint64_t{1} << 20);
    CHECK_EQ(h->stats().max_objects, 256u);
  }
}

TEST(create_mode_is_applied) {
  ShmName name("mode");
  auto o = options(4096);
  o.mode = 0640;
  auto s = Store::create(name, o);
  struct stat st{};
  REQUIRE(::stat(name.path().c_str(), &st) == 0);
  CHECK_EQ(st.st_mode & 0777, 0640u);
}

TEST(create_existing_store_fails_and_keeps_it) {
  ShmName name("exists");
  auto a = Store::create(name, options(4096));
  put(*a, make_id(1), 10);
  CHECK_THROWS_CODE(Store::create(name, options(8192)), Errc::StoreExists);
  // The failed create must not have removed or damaged the existing segment.
  CHECK(name.exists());
  auto b = Store::open(name);
  CHECK(b->contains(make_id(1)));
  CHECK_EQ(b->capacity(), 4096u);
}

TEST(open_and_unlink_missing_store) {
  ShmName name("missing");
  CHECK_THROWS_CODE(Store::open(name), Errc::StoreNotFound);
  CHECK_THROWS_CODE(Store::unlink(name), Errc::StoreNotFound);
  CHECK(!name.exists());
}

TEST(bad_names) {
  const std::string too_long(201, 'a');
  const std::vector<std::string> bad = {"", "a/b", "/abs", "..", "a..b", "../x", ".hidden",
                                        too_long, "sp ace", "tab\t", std::string("nul\0x", 5),
                                        "star*", "ü"};
  for (const std::string& n : bad) {
    CHECK_THROWS_CODE(Store::check_name(n), Errc::InvalidArgument);
    CHECK_THROWS_CODE(Store::create(n, options(4096)), Errc::InvalidArgument);
    CHECK_THROWS_CODE(Store::open(n), Errc::InvalidArgument);
    CHECK_THROWS_CODE(Store::unlink(n), Errc::InvalidArgument);
  }
  // The longest legal name works end to end.
  ShmName base("long");
  std::string longest = base.str();
  longest.resize(200, 'x');
  CHECK_NOTHROW(Store::check_name(longest));
  {
    auto s = Store::create(longest, options(4096));
    CHECK(::access(Store::path_of(longest).c_str(), F_OK) == 0);
  }
  CHECK_NOTHROW(Store::unlink(longest));
  ::unlink(Store::path_of(longest).c_str());  // in case unlink above failed
}

TEST(bad_options) {
  ShmName name("badopts");
  auto with = [](auto edit) {
    StoreOptions o = options(1 << 16);
    edit(o);
    return o;
  };
  const std::vector<StoreOptions> bad = {
      with([](StoreOptions& o) { o.capacity = 0; }),
      with([](StoreOptions& o) { o.capacity = 63; }),
      with([](StoreOptions& o) { o.capacity = (uint64_t{1} << 46) + 1; }),
      with([](StoreOptions& o) { o.capacity = ~uint64_t{0}; }),
      with([](StoreOptions& o) { o.max_objects = 0; }),
      with([](StoreOptions& o) { o.max_objects = shmstore::kMaxObjectsLimit + 1; }),
      with([](StoreOptions& o) { o.max_clients = 0; }),
      with([](StoreOptions& o) { o.max_clients = shmstore::kMaxClientsLimit + 1; }),
      with([](StoreOptions& o) { o.notify_capacity = 0; }),
      with([](StoreOptions& o) { o.notify_capacity = 3; }),
      with([](StoreOptions& o) { o.notify_capacity = 1u << 21; }),
      with([](StoreOptions& o) { o.mode = 01777; }),
      with([](StoreOptions& o) { o.eviction = static_cast<Eviction>(7); }),
  };
  for (const StoreOptions& o : bad) {
    CHECK_THROWS_CODE(Store::create(name, o), Errc::InvalidArgument);
    CHECK(!name.exists());
  }
  // The limits themselves are accepted.
  auto ok = with([](StoreOptions& o) {
    o.capacity = 64;
    o.max_objects = 1;
    o.max_clients = shmstore::kMaxClientsLimit;
    o.notify_capacity = 1;
  });
  CHECK_NOTHROW(Store::create(name, ok));
}

TEST(absurd_capacity_fails_fast_with_no_space) {
  ShmName name("nospace");
  struct statvfs vfs{};
  REQUIRE(::statvfs(shm_dir().c_str(), &vfs) == 0);
  const uint64_t avail = vfs.f_bavail > UINT64_MAX / vfs.f_frsize ? UINT64_MAX : vfs.f_bavail * vfs.f_frsize;
  uint64_t capacity = uint64_t{1} << 40;  // 1 TiB
  if (avail >= capacity) capacity = uint64_t{1} << 46;
  REQUIRE(avail < capacity);
  const int64_t t0 = now_ns();
  CHECK_THROWS_CODE(Store::create(name, options(capacity)), Errc::NoSpace);
  const int64_t took = now_ns() - t0;
  CHECK(took < 1000 * kMs);  // the statvfs check, not a fallocate of the whole tmpfs
  CHECK(!name.exists());     // no half-made file left behind
}

// ---- objects ---------------------------------------------------------------------------------

TEST(create_seal_get_release_metadata) {
  ShmName name("objects");
  auto a = Store::create(name, options(1 << 20));
  auto b = Store::open(name);
  const ObjectId id = make_id(42);
  const std::string meta = "schema:v1\x00\xff binary";

  ObjectView w = a->create_object(id, 1000, as_bytes(meta));
  CHECK_EQ(w.data_size, 1000u);
  CHECK_EQ(w.metadata_size, meta.size());
  CHECK(w.metadata == w.data + w.data_size);  // metadata right after data
  CHECK_EQ(as_string(w.metadata, w.metadata_size), meta);
  fill_pattern(w.data, w.data_size, 99);

  // Not visible before seal.
  CHECK(!a->contains(id));
  CHECK(!b->contains(id));
  CHECK(!b->get(id).has_value());
  CHECK_THROWS_CODE(a->create_object(id, 10, {}), Errc::ObjectExists);
  CHECK_THROWS_CODE(b->create_object(id, 10, {}), Errc::ObjectExists);
  CHECK_THROWS_CODE(b->seal(id), Errc::NotCreator);
  auto list = a->list();
  REQUIRE(find_info(list, id) != nullptr);
  CHECK(find_info(list, id)->state == ObjectState::Created);
  CHECK_EQ(find_info(list, id)->creator_slot, a->slot());

  a->seal(id);
  CHECK_THROWS_CODE(a->seal(id), Errc::ObjectAlreadySealed);
  CHECK_THROWS_CODE(a->create_object(id, 10, {}), Errc::ObjectExists);
  CHECK(a->contains(id));
  CHECK(b->contains(id));

  auto r = b->get(id);
  REQUIRE(r.has_value());
  check_view_pattern(*r, 1000, 99);
  CHECK_EQ(as_string(r->metadata, r->metadata_size), meta);
  CHECK(r->metadata == r->data + r->data_size);
  list = a->list();
  REQUIRE(find_info(list, id) != nullptr);
  CHECK(find_info(list, id)->state == ObjectState::Sealed);
  CHECK_EQ(find_info(list, id)->holders, 1u);
  CHECK_EQ(find_info(list, id)->data_size, 1000u);
  CHECK_EQ(find_info(list, id)->metadata_size, meta.size());

  // A second get from the same handle hands out the same memory, and the handle still holds
  // the object once (holders is a set of clients, not a count): one release drops it.
  auto r2 = b->get(id);
  REQUIRE(r2.has_value());
  CHECK(r2->data == r->data);
  CHECK_EQ(r2->entry, r->entry);
  CHECK_EQ(r2->generation, r->generation);
  CHECK_EQ(find_info(a->list(), id)->holders, 1u);
  b->release(r->entry, r->generation);
  CHECK_EQ(find_info(a->list(), id)->holders, 0u);
  CHECK_THROWS_CODE(b->release(r2->entry, r2->generation), Errc::ObjectNotFound);

  const auto st = a->stats();
  CHECK_EQ(st.creates, 1u);
  CHECK_EQ(st.seals, 1u);
  CHECK_EQ(st.objects, 1u);
  CHECK_EQ(st.sealed, 1u);
  CHECK_EQ(st.used_bytes, alloc_size(1000, meta.size()));
  check_accounting(*a);
}

TEST(seal_abort_remove_unknown_ids) {
  ShmName name("unknown");
  auto s = Store::create(name, options(4096));
  const ObjectId id = make_id(5);
  CHECK_THROWS_CODE(s->seal(id), Errc::ObjectNotFound);
  CHECK_THROWS_CODE(s->abort(id), Errc::ObjectNotFound);
  CHECK_THROWS_CODE(s->remove(id), Errc::ObjectNotFound);
  CHECK(!s->get(id).has_value());
  CHECK(!s->contains(id));
}

TEST(object_size_limits) {
  ShmName name("sizes");
  auto s = Store::create(name, options(4096));
  std::string meta(10, 'm');
  CHECK_THROWS_CODE(s->create_object(make_id(1), 4097, {}), Errc::InvalidArgument);
  CHECK_THROWS_CODE(s->create_object(make_id(1), 4090, as_bytes(meta)), Errc::InvalidArgument);
  CHECK_THROWS_CODE(s->create_object(make_id(1), ~uint64_t{0}, as_bytes(meta)), Errc::InvalidArgument);
  CHECK_THROWS_CODE(s->create_object(make_id(1), uint64_t{1} << 63, {}), Errc::InvalidArgument);
  CHECK_EQ(s->stats().used_bytes, 0u);
  // Exactly the capacity fits; then nothing else does.
  put(*s, make_id(2), 4096, 3);
  CHECK_EQ(s->stats().used_bytes, 4096u);
  CHECK_EQ(s->stats().largest_free, 0u);
  s->remove(make_id(2));
  // An empty object still takes one 64-byte unit.
  put(*s, make_id(3), 0, 3);
  auto v = s->get(make_id(3));
  REQUIRE(v.has_value());
  CHECK_EQ(v->data_size, 0u);
  CHECK_EQ(v->metadata_size, 0u);
  CHECK_EQ(s->stats().used_bytes, 64u);
  s->release(v->entry, v->generation);
  // Metadata only.
  s->create_object(make_id(4), 0, as_bytes(meta));
  s->seal(make_id(4));
  auto m = s->get(make_id(4));
  REQUIRE(m.has_value());
  CHECK_EQ(as_string(m->metadata, m->metadata_size), meta);
  s->release(m->entry, m->generation);
  check_accounting(*s);
}

TEST(data_is_64_byte_aligned) {
  ShmName name("align");
  auto a = Store::create(name, options(1 << 20, 128));
  auto b = Store::open(name);
  const uint64_t sizes[] = {0, 1, 7, 63, 64, 65, 100, 127, 128, 1000, 4095, 4097};
  const uint64_t metas[] = {0, 1, 13, 64, 100};
  uint64_t n = 0, expected_used = 0;
  for (uint64_t size : sizes) {
    for (uint64_t msize : metas) {
      const ObjectId id = make_id(++n);
      std::string meta(msize, static_cast<char>('a' + n % 26));
      ObjectView w = a->create_object(id, size, as_bytes(meta));
      CHECK_EQ(reinterpret_cast<uintptr_t>(w.data) % 64, 0u);
      CHECK(w.metadata == w.data + size);
      fill_pattern(w.data, size, n);
      a->seal(id);
      expected_used += alloc_size(size, msize);
      auto r = b->get(id);
      REQUIRE(r.has_value());
      // Every mapping is page-aligned, so 64-byte alignment of the pointer is alignment of the
      // offset within the mapping.
      CHECK_EQ(reinterpret_cast<uintptr_t>(r->data) % 64, 0u);
      check_view_pattern(*r, size, n);
      CHECK_EQ(as_string(r->metadata, r->metadata_size), meta);
      b->release(r->entry, r->generation);
    }
  }
  CHECK_EQ(a->stats().used_bytes, expected_used);
  check_accounting(*a);
}

TEST(abort_is_for_the_creator_only) {
  ShmName name("abort");
  auto a = Store::create(name, options(4096));
  auto b = Store::open(name);
  const ObjectId id = make_id(1);
  a->create_object(id, 100, {});
  CHECK_EQ(a->stats().used_bytes, 128u);
  CHECK_THROWS_CODE(b->abort(id), Errc::NotCreator);
  CHECK_THROWS_CODE(b->remove(id), Errc::ObjectNotSealed);
  CHECK_THROWS_CODE(a->remove(id), Errc::ObjectNotSealed);
  CHECK(find_info(a->list(), id) != nullptr);
  a->abort(id);
  CHECK(find_info(a->list(), id) == nullptr);
  CHECK_EQ(a->stats().used_bytes, 0u);
  CHECK_EQ(a->stats().aborts, 1u);
  CHECK_EQ(a->stats().objects, 0u);
  CHECK_THROWS_CODE(a->abort(id), Errc::ObjectNotFound);
  // The id can be used again, by anyone.
  put(*b, id, 10, 4);
  CHECK_THROWS_CODE(b->abort(id), Errc::ObjectAlreadySealed);
  CHECK_THROWS_CODE(a->abort(id), Errc::ObjectAlreadySealed);
  CHECK(a->contains(id));
  check_accounting(*a);
}

TEST(remove_is_deferred_while_held) {
  ShmName name("remove");
  auto a = Store::create(name, options(1 << 16));
  auto b = Store::open(name);
  const ObjectId id = make_id(1), other = make_id(2);
  put(*a, id, 1000, 11);
  put(*a, other, 500, 12);

  // Unheld: freed at once.
  CHECK(a->remove(other));
  CHECK(!a->contains(other));
  CHECK_EQ(a->stats().used_bytes, alloc_size(1000, 0));

  auto held = b->get(id);
  REQUIRE(held.has_value());
  CHECK(!a->remove(id));  // deferred
  CHECK(!a->contains(id));
  CHECK(!b->contains(id));
  CHECK(!a->get(id).has_value());
  CHECK_THROWS_CODE(a->remove(id), Errc::ObjectNotFound);
  auto st = a->stats();
  CHECK_EQ(st.deleting, 1u);
  CHECK_EQ(st.objects, 0u);
  CHECK_EQ(st.sealed, 0u);
  CHECK_EQ(st.used_bytes, alloc_size(1000, 0));
  CHECK_EQ(st.deletes, 2u);
  auto list = a->list();
  REQUIRE(find_info(list, id) != nullptr);
  CHECK(find_info(list, id)->state == ObjectState::Deleting);
  CHECK_EQ(find_info(list, id)->holders, 1u);
  check_accounting(*a);

  // The holder's bytes stay intact, even while the id is reused and the store churns.
  put(*a, id, 300, 13);
  for (int i = 0; i < 20; ++i) {
    put(*a, make_id(100 + i), 1000, 100 + i);
    a->remove(make_id(100 + i));
  }
  check_view_pattern(*held, 1000, 11);
  auto fresh = a->get(id);
  REQUIRE(fresh.has_value());
  check_view_pattern(*fresh, 300, 13);
  a->release(fresh->entry, fresh->generation);
  CHECK_EQ(a->stats().used_bytes, alloc_size(1000, 0) + alloc_size(300, 0));

  // The last release frees it.
  const uint32_t seq = a->change_seq();
  b->release(held->entry, held->generation);
  CHECK(a->change_seq() != seq);
  st = a->stats();
  CHECK_EQ(st.deleting, 0u);
  CHECK_EQ(st.used_bytes, alloc_size(300, 0));
  CHECK_THROWS_CODE(b->release(held->entry, held->generation), Errc::ObjectNotFound);
  check_accounting(*a);
}

TEST(release_of_what_is_not_held) {
  ShmName name("release");
  auto a = Store::create(name, options(1 << 16));
  auto b = Store::open(name);
  put(*a, make_id(1), 100);
  auto v = a->get(make_id(1));
  REQUIRE(v.has_value());
  CHECK_THROWS_CODE(b->release(v->entry, v->generation), Errc::ObjectNotFound);      // b never got it
  CHECK_THROWS_CODE(a->release(v->entry, v->generation + 1), Errc::ObjectNotFound);  // stale generation
  a->release(v->entry, v->generation);
  CHECK_THROWS_CODE(a->release(v->entry, v->generation), Errc::ObjectNotFound);  // twice
  // A stale (entry, generation) never names the object that reuses the entry.
  a->remove(make_id(1));
  put(*a, make_id(2), 100);
  auto w = a->get(make_id(2));
  REQUIRE(w.has_value());
  CHECK_THROWS_CODE(a->release(v->entry, v->generation), Errc::ObjectNotFound);
  a->release(w->entry, w->generation);
  // A free entry.
  CHECK_THROWS_CODE(a->release(a->stats().max_objects - 1, 0), Errc::ObjectNotFound);
}

// release() takes (entry, generation) from the caller, not from shared memory: an entry index
// out of range is "not held", not a corrupted segment.
TEST(release_of_out_of_range_entry_is_not_found) {
  ShmName name("release-range");
  auto a = Store::create(name, options(4096, 8));
  CHECK_THROWS_CODE(a->release(8, 1), Errc::ObjectNotFound);
  CHECK_THROWS_CODE(a->release(0xffffffffu, 1), Errc::ObjectNotFound);
}

TEST(lru_eviction_order) {
  ShmName name("lru");
  auto s = Store::create(name, options(4096, 16));
  auto other = Store::open(name);
  const ObjectId A = make_id(1), B = make_id(2), C = make_id(3), D = make_id(4), E = make_id(5);
  put(*s, A, 1024, 1);
  put(*s, B, 1024, 2);
  put(*s, C, 1024, 3);
  put(*s, D, 1024, 4);
  CHECK_EQ(s->stats().used_bytes, 4096u);
  // Use A (from another handle: any get refreshes), so B is now the least recently used.
  auto a = other->get(A);
  REQUIRE(a.has_value());
  other->release(a->entry, a->generation);

  put(*s, E, 1024, 5);  // full: evicts exactly one, the LRU
  CHECK(!s->contains(B));
  CHECK(s->contains(A));
  CHECK(s->contains(C));
  CHECK(s->contains(D));
  CHECK(s->contains(E));
  auto st = s->stats();
  CHECK_EQ(st.evictions, 1u);
  CHECK_EQ(st.evicted_bytes, 1024u);

  // Explicit evict, one object at a time: C, D, then A (refreshed), never E while held.
  auto e = s->get(E);
  REQUIRE(e.has_value());
  CHECK_EQ(s->evict(1), 1024u);
  CHECK(!s->contains(C));
  CHECK(s->contains(D));
  CHECK_EQ(s->evict(1), 1024u);
  CHECK(!s->contains(D));
  CHECK(s->contains(A));
  CHECK_EQ(s->evict(1 << 20), 1024u);  // only A is evictable
  CHECK(!s->contains(A));
  CHECK(s->contains(E));
  CHECK_EQ(s->evict(1), 0u);
  check_view_pattern(*e, 1024, 5);
  s->release(e->entry, e->generation);
  CHECK_EQ(s->evict(0), 0u);  // nothing asked, nothing freed
  CHECK(s->contains(E));
  st = s->stats();
  CHECK_EQ(st.evictions, 4u);
  CHECK_EQ(st.evicted_bytes, 4096u);
  check_accounting(*s);
}

// With a capacity that is not a multiple of 64, an object can pass the size check yet never fit
// once rounded up to 64 bytes. Such a create must be refused as impossible, not by evicting
// every object in the store first.
TEST(object_that_can_never_fit_evicts_nothing) {
  ShmName name("never-fits");
  auto s = Store::create(name, options(100, 16));
  put(*s, make_id(1), 40, 1);  // takes [0, 64)
  CHECK_THROWS_CODE(s->create_object(make_id(2), 100, {}), Errc::InvalidArgument);
  CHECK(s->contains(make_id(1)));
  CHECK_EQ(s->stats().evictions, 0u);
}

TEST(lru_eviction_frees_enough_for_a_large_object) {
  ShmName name("lru-large");
  auto s = Store::create(name, options(8192, 16));
  for (int i = 0; i < 8; ++i) put(*s, make_id(i), 1024, i);
  // Holding object 0 and 1 pins them; a 4096-byte create must evict the oldest unpinned ones
  // until a contiguous run is free.
  auto h0 = s->get(make_id(0));
  auto h1 = s->get(make_id(1));
  REQUIRE(h0 && h1);
  put(*s, make_id(100), 4096, 100);
  CHECK(s->contains(make_id(0)));
  CHECK(s->contains(make_id(1)));
  CHECK(s->contains(make_id(100)));
  CHECK(!s->contains(make_id(2)));
  CHECK(s->contains(make_id(7)));  // the newest survive
  // Everything left is pinned or too new; a create that cannot fit even after evicting all
  // the unpinned objects fails.
  CHECK_THROWS_CODE(s->create_object(make_id(101), 8192 - 1024, {}), Errc::StoreFull);
  check_view_pattern(*h0, 1024, 0);
  s->release(h0->entry, h0->generation);
  s->release(h1->entry, h1->generation);
  check_accounting(*s);
}

TEST(eviction_none_reports_store_full) {
  ShmName name("none");
  auto s = Store::create(name, options(4096, 16, 16, Eviction::None));
  put(*s, make_id(1), 2048, 1);
  put(*s, make_id(2), 2048, 2);
  CHECK_THROWS_CODE(s->create_object(make_id(3), 1, {}), Errc::StoreFull);
  CHECK(s->contains(make_id(1)));
  CHECK(s->contains(make_id(2)));
  CHECK_EQ(s->stats().evictions, 0u);
  CHECK_EQ(s->stats().eviction, Eviction::None);
  s->remove(make_id(1));
  s->remove(make_id(2));
  CHECK_EQ(s->stats().used_bytes, 0u);
  // First fit, and coalescing of freed neighbours: A@0 B@1024 C@2048 D@3072.
  for (int i = 10; i < 14; ++i) put(*s, make_id(i), 1024, i);
  CHECK_EQ(s->stats().free_extents, 0u);
  s->remove(make_id(10));
  s->remove(make_id(12));
  // Free [0,1024) and [2048,3072): 2048 bytes free but not contiguous.
  CHECK_EQ(s->stats().used_bytes, 2048u);
  CHECK_EQ(s->stats().largest_free, 1024u);
  CHECK_EQ(s->stats().free_extents, 2u);
  CHECK_THROWS_CODE(s->create_object(make_id(20), 2048, {}), Errc::StoreFull);
  put(*s, make_id(20), 1024, 20);  // @0
  put(*s, make_id(21), 1024, 21);  // @2048
  CHECK_EQ(s->stats().used_bytes, 4096u);
  CHECK_EQ(s->stats().free_extents, 0u);
  s->remove(make_id(11));  // [1024,2048)
  CHECK_EQ(s->stats().free_extents, 1u);
  s->remove(make_id(20));  // merges with the next: [0,2048)
  CHECK_EQ(s->stats().free_extents, 1u);
  CHECK_EQ(s->stats().largest_free, 2048u);
  s->remove(make_id(13));  // [3072,4096) on its own
  CHECK_EQ(s->stats().free_extents, 2u);
  s->remove(make_id(21));  // merges with both sides
  CHECK_EQ(s->stats().free_extents, 1u);
  CHECK_EQ(s->stats().largest_free, 4096u);
  CHECK_EQ(s->stats().used_bytes, 0u);
  check_accounting(*s);
}

TEST(max_objects) {
  {
    ShmName name("maxobj-none");
    auto s = Store::create(name, options(1 << 16, 4, 16, Eviction::None));
    for (int i = 0; i < 4; ++i) put(*s, make_id(i), 10, i);
    CHECK_THROWS_CODE(s->create_object(make_id(9), 10, {}), Errc::StoreFull);
    CHECK_EQ(s->stats().objects, 4u);
    s->remove(make_id(0));
    CHECK_NOTHROW(put(*s, make_id(9), 10, 9));
  }
  {
    ShmName name("maxobj-lru");
    auto s = Store::create(name, options(1 << 16, 4));
    for (int i = 0; i < 4; ++i) put(*s, make_id(i), 10, i);
    put(*s, make_id(9), 10, 9);  // evicts the LRU entry
    CHECK(!s->contains(make_id(0)));
    CHECK_EQ(s->stats().objects, 4u);
    CHECK_EQ(s->stats().evictions, 1u);
    // All pinned (held or unsealed): StoreFull even with LRU.
    std::vector<ObjectView> held;
    for (int i : {1, 2, 3}) held.push_back(*s->get(make_id(i)));
    s->create_object(make_id(10), 10, {});  // evicts 9, the only unpinned one
    CHECK(!s->contains(make_id(9)));
    CHECK_THROWS_CODE(s->create_object(make_id(11), 10, {}), Errc::StoreFull);
    for (auto& v : held) s->release(v.entry, v.generation);
    check_accounting(*s);
  }
}

// ---- waits ---------------------------------------------------------------------------------

TEST(create_object_wait_times_out) {
  ShmName name("cwait-timeout");
  auto s = Store::create(name, options(4096, 16, 16, Eviction::None));
  put(*s, make_id(1), 4096, 1);
  int64_t t0 = now_ns();
  CHECK_THROWS_CODE(s->create_object_wait(make_id(2), 64, {}, 0), Errc::StoreFull);
  CHECK(now_ns() - t0 < 500 * kMs);
  t0 = now_ns();
  CHECK_THROWS_CODE(s->create_object_wait(make_id(2), 64, {}, 150 * kMs), Errc::StoreFull);
  const int64_t took = now_ns() - t0;
  CHECK(took >= 140 * kMs);
  CHECK(took < 5000 * kMs);
  // Errors other than StoreFull are not waited on.
  t0 = now_ns();
  CHECK_THROWS_CODE(s->create_object_wait(make_id(1), 64, {}, 5000 * kMs), Errc::ObjectExists);
  CHECK(now_ns() - t0 < 1000 * kMs);
  CHECK(!s->contains(make_id(2)));
}

TEST(create_object_wait_succeeds_after_a_delete) {
  for (const int64_t timeout : {int64_t{20'000} * kMs, int64_t{-1}}) {
    Watchdog watchdog(60);  // a lost wake-up with timeout -1 fails here, not at the ctest timeout
    ShmName name("cwait-delete");
    auto s = Store::create(name, options(4096, 16, 16, Eviction::None));
    put(*s, make_id(1), 4096, 1);
    std::atomic<bool> removed{false};
    std::thread t([&] {
      auto h = Store::open(name);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      removed = true;
      h->remove(make_id(1));
    });
    const int64_t t0 = now_ns();
    bool ok = false;
    try {
      ObjectView v = s->create_object_wait(make_id(2), 4096, {}, timeout);
      fill_pattern(v.data, v.data_size, 2);
      s->seal(make_id(2));
      ok = true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "create_object_wait: %s\n", e.what());
    }
    t.join();
    CHECK(ok);
    CHECK(removed.load());
    CHECK(now_ns() - t0 >= 100 * kMs);
    CHECK(now_ns() - t0 < 10'000 * kMs);
    CHECK(s->contains(make_id(2)));
    CHECK(!s->contains(make_id(1)));
  }
}

TEST(create_object_wait_succeeds_after_a_release) {
  ShmName name("cwait-release");
  auto s = Store::create(name, options(4096, 16));  // LRU, but everything is pinned
  put(*s, make_id(1), 2048, 1);
  put(*s, make_id(2), 2048, 2);
  std::atomic<bool> holding{false}, released{false};
  std::thread t([&] {
    auto h = Store::open(name);
    auto v1 = h->get(make_id(1));
    auto v2 = h->get(make_id(2));
    holding = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    released = true;
    if (v1) h->release(v1->entry, v1->generation);
    if (v2) h->release(v2->entry, v2->generation);
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int64_t t0 = now_ns();
  bool ok = false;
  try {
    s->create_object_wait(make_id(3), 4096, {}, 20'000 * kMs);
    ok = true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "create_object_wait: %s\n", e.what());
  }
  t.join();
  CHECK(ok);
  CHECK(released.load());
  CHECK(now_ns() - t0 >= 100 * kMs);
  CHECK(now_ns() - t0 < 10'000 * kMs);
  CHECK_EQ(s->stats().evictions, 2u);
  s->abort(make_id(3));
}

TEST(get_wait) {
  ShmName name("gwait");
  auto s = Store::create(name, options(1 << 16));
  const ObjectId id = make_id(1);
  // Poll.
  int64_t t0 = now_ns();
  CHECK(!s->get_wait(id, 0).has_value());
  CHECK(now_ns() - t0 < 500 * kMs);
  // Short timeout.
  t0 = now_ns();
  CHECK(!s->get_wait(id, 100 * kMs).has_value());
  int64_t took = now_ns() - t0;
  CHECK(took >= 90 * kMs);
  CHECK(took < 5000 * kMs);
  // An unsealed object is not returned either.
  auto h = Store::open(name);
  h->create_object(id, 64, {});
  CHECK(!s->get_wait(id, 20 * kMs).has_value());
  h->abort(id);
  // Already there: returns at once.
  put(*s, make_id(2), 10, 2);
  auto v = s->get_wait(make_id(2), 0);
  REQUIRE(v.has_value());
  s->release(v->entry, v->generation);
}

TEST(put_object_and_copy_out) {
  ShmName name("put-copy");
  auto a = Store::create(name, options(1 << 20));
  auto b = Store::open(name);
  const std::string meta = "m:1";
  for (const uint64_t size : {uint64_t{0}, uint64_t{100}, Store::kCopyInLockMax - meta.size(), uint64_t{70'000}}) {
    const ObjectId id = make_id(size + 1);
    std::vector<uint8_t> bytes(size);
    fill_pattern(bytes.data(), size, size);
    // Small ones are sealed under the lock they were created in; large ones copied outside,
    // a piece of 64 KiB or more with streaming stores (here from an unaligned offset).
    const std::span<const uint8_t> all(bytes);
    const std::span<const uint8_t> pieces[] = {all.first(size / 7), all.subspan(size / 7)};
    const ObjectView v = a->put_object(id, pieces, as_bytes(meta), size == 100);
    CHECK(a->contains(id));
    check_view_pattern(v, size, size);
    CHECK_EQ(find_info(a->list(), id)->holders, size == 100 ? 1u : 0u);
    CHECK_THROWS_CODE(a->put_object(id, pieces, {}, false), Errc::ObjectExists);

    // copy_out: data then metadata when both fit, sizes alone when not; no reference taken.
    std::vector<uint8_t> out(Store::kCopyInLockMax, 0xee);
    auto r = b->copy_out(id, out, true);
    REQUIRE(r.has_value());
    CHECK_EQ(r->data_size, size);
    CHECK_EQ(r->metadata_size, meta.size());
    CHECK(r->copied == (size + meta.size() <= out.size()));
    if (r->copied) {
      CHECK(has_pattern(out.data(), size, size));
      CHECK_EQ(as_string(out.data() + size, meta.size()), meta);
    } else {
      CHECK_EQ(out[0], 0xee);  // nothing copied
    }
    auto without_meta = b->copy_out(id, std::span<uint8_t>(out.data(), std::min<uint64_t>(size, out.size())), false);
    CHECK(without_meta.has_value() && without_meta->copied == (size <= out.size()));
    CHECK_EQ(find_info(a->list(), id)->holders, size == 100 ? 1u : 0u);
  }
  std::vector<uint8_t> big(Store::kCopyInLockMax + 1);
  CHECK_THROWS_CODE(b->copy_out(make_id(101), big, false), Errc::InvalidArgument);
  std::vector<uint8_t> out(64);
  CHECK(!b->copy_out(make_id(999), out, false).has_value());
  a->create_object(make_id(998), 10, {});
  CHECK(!b->copy_out(make_id(998), out, false).has_value());  // not sealed yet
  const int64_t t0 = now_ns();
  CHECK(!b->copy_out_wait(make_id(998), out, false, 30 * kMs).has_value());
  CHECK(now_ns() - t0 >= 25 * kMs);
  a->seal(make_id(998));
  CHECK(b->copy_out_wait(make_id(998), out, false, 30 * kMs).has_value());
  check_accounting(*a);
}

TEST(try_put_object_answers_nullopt_when_full) {
  ShmName name("try-put");
  auto s = Store::create(name, options(64 << 10, 4, 16, Eviction::None));
  std::vector<uint8_t> bytes(40 << 10, 3);
  const std::span<const uint8_t> one[] = {bytes};
  REQUIRE(s->try_put_object(make_id(1), one, {}, false).has_value());
  // No room for another 40 KiB (copied outside the lock), nor, once the entries are taken,
  // for 10 bytes (under it): nullopt, where put_object throws, and nothing is left behind.
  CHECK(!s->try_put_object(make_id(2), one, {}, false).has_value());
  CHECK_THROWS_CODE(s->put_object(make_id(2), one, {}, false), Errc::StoreFull);
  const std::span<const uint8_t> small[] = {std::span(bytes).first(10)};
  for (uint64_t i = 3; i < 6; ++i) REQUIRE(s->try_put_object(make_id(i), small, {}, false).has_value());
  CHECK(!s->try_put_object(make_id(6), small, {}, false).has_value());
  CHECK(!s->contains(make_id(2)) && !s->contains(make_id(6)));
  CHECK_EQ(s->stats().objects, 4u);
  CHECK_THROWS_CODE(s->try_put_object(make_id(1), small, {}, false), Errc::ObjectExists);
  check_accounting(*s);

  // lru: what it evicts on the way to nullopt stays evicted, and its readers are woken.
  ShmName lru_name("try-put-lru");
  auto l = Store::create(lru_name, options(64 << 10, 4));
  const std::optional<ObjectView> pinned = l->try_put_object(make_id(1), one, {}, true);
  REQUIRE(pinned.has_value());
  REQUIRE(l->try_put_object(make_id(2), small, {}, false).has_value());
  const uint32_t seq = l->change_seq();
  CHECK(!l->try_put_object(make_id(3), one, {}, false).has_value());
  CHECK(!l->contains(make_id(2)));
  CHECK_EQ(l->stats().evictions, 1u);
  CHECK(l->change_seq() != seq);
  l->release(pinned->entry, pinned->generation);
  check_accounting(*l);
}

TEST(get_wait_is_satisfied_by_another_threads_seal) {
  ShmName name("gwait-seal");
  auto s = Store::create(name, options(1 << 16));
  for (const int64_t timeout : {int64_t{20'000} * kMs, int64_t{-1}}) {
    Watchdog watchdog(60);
    const ObjectId id = make_id(timeout < 0 ? 2 : 1);
    std::atomic<bool> sealed{false};
    std::thread t([&] {
      auto h = Store::open(name);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ObjectView w = h->create_object(id, 5000, as_bytes("meta"));
      fill_pattern(w.data, w.data_size, 77);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      sealed = true;
      h->seal(id);
      // Unrelated changes before the seal must not end the wait early (checked below).
    });
    const int64_t t0 = now_ns();
    auto v = s->get_wait(id, timeout);
    const int64_t took = now_ns() - t0;
    t.join();
    REQUIRE(v.has_value());
    CHECK(sealed.load());
    CHECK(took >= 80 * kMs);
    CHECK(took < 10'000 * kMs);
    check_view_pattern(*v, 5000, 77);
    CHECK_EQ(as_string(v->metadata, v->metadata_size), "meta");
    s->release(v->entry, v->generation);
  }
}

TEST(wait_change_and_local_wake) {
  ShmName name("wake");
  auto s = Store::create(name, options(4096));
  // Nothing changes: times out.
  uint32_t seen = s->change_seq();
  timespec d = shmstore::futex::deadline_after_ns(50 * kMs);
  CHECK(!s->wait_change(seen, &d));
  // Already changed: returns at once.
  put(*s, make_id(1), 10);
  d = shmstore::futex::deadline_after_ns(5000 * kMs);
  int64_t t0 = now_ns();
  CHECK(s->wait_change(seen, &d));
  CHECK(now_ns() - t0 < 1000 * kMs);
  // A bump of a process-local word wakes wait_any_change (another thread of the same
  // handle: the one thing a handle allows), even a bump made before it went to sleep.
  uint32_t word = 0;
  std::atomic<bool> done{false};
  seen = s->change_seq();
  const Store::ChangeWatch watch[] = {{s.get(), seen}};
  std::atomic_ref<uint32_t>(word).fetch_add(1);
  Store::wait_any_change(watch, &word, 0);  // already differs: returns at once
  std::thread t([&] {
    Store::wait_any_change(watch, &word, 1);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!done.load());
  t0 = now_ns();
  std::atomic_ref<uint32_t>(word).fetch_add(1);
  shmstore::futex::wake_local(&word);
  t.join();
  CHECK(now_ns() - t0 < 5'000 * kMs);
  CHECK_EQ(s->change_seq(), seen);  // a local wake is not a change
}

// One thread waits for several stores at once (the addon's waiter thread): a change in any
// of them wakes it, also with more watches than one futex_waitv takes (it sleeps on the first
// 127 and looks at the rest every 1 ms).
TEST(wait_any_change_wakes_on_any_store) {
  ShmName na("any-a"), nb("any-b");
  auto a = Store::create(na, options(4096));
  auto b = Store::create(nb, options(4096));
  uint32_t word = 0;
  for (const size_t copies : {size_t{1}, shmstore::futex::kMaxWatched}) {
    // copies of each watch: 2 words, or 254 (past what one futex_waitv takes)
    std::vector<Store::ChangeWatch> watches;
    for (size_t i = 0; i < copies; ++i) {
      watches.push_back({a.get(), a->change_seq()});
      watches.push_back({b.get(), b->change_seq()});
    }
    std::atomic<bool> done{false};
    std::thread t([&] {
      Store::wait_any_change(watches, &word, 0);
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(!done.load());
    CHECK(a->stats().waiters > 0);  // asleep, counted in both stores (once per watch slept on)
    CHECK(b->stats().waiters > 0);
    put(copies == 1 ? *a : *b, make_id(static_cast<uint8_t>(copies)), 10);
    const int64_t t0 = now_ns();
    t.join();
    CHECK(now_ns() - t0 < 5'000 * kMs);
    CHECK_EQ(a->stats().waiters, 0u);  // and out again
    CHECK_EQ(b->stats().waiters, 0u);
  }
}

TEST(change_seq_moves_on_every_change) {
  ShmName name("seq");
  auto s = Store::create(name, options(1 << 16));
  auto moved = [&](auto&& op) {
    const uint32_t before = s->change_seq();
    op();
    return s->change_seq() != before;
  };
  s->create_object(make_id(1), 10, {});  // a create alone need not wake anyone
  CHECK(moved([&] { s->seal(make_id(1)); }));
  ObjectView v{};
  CHECK(!moved([&] { v = *s->get(make_id(1)); }));  // a get changes nothing for waiters
  CHECK(moved([&] { s->release(v.entry, v.generation); }));
  CHECK(moved([&] { s->remove(make_id(1)); }));
  s->create_object(make_id(2), 10, {});
  CHECK(moved([&] { s->abort(make_id(2)); }));
  CHECK(moved([&] { s->set_cursor(1, 5); }));
  CHECK(moved([&] { s->set_cursor(1, 6); }));
  CHECK(!moved([&] { s->set_cursor(1, 7, /*notify=*/false); }));  // a quiet store
  CHECK(s->cursor_values(1) == std::vector<uint64_t>{7});
  s->set_cursor(2, 1, false);  // a new cursor may still be announced
  CHECK(s->cursor_values(2) == std::vector<uint64_t>{1});
  CHECK(!moved([&] { s->set_cursor(2, 3, false); }));
  CHECK(s->cursor_values(2) == std::vector<uint64_t>{3});
  CHECK(moved([&] { s->clear_cursor(1); }));
  put(*s, make_id(3), 10);
  CHECK(moved([&] { s->evict(1); }));
}

// ---- notifications -------------------------------------------------------------------------

TEST(notifications) {
  ShmName name("notify");
  auto s = Store::create(name, options(1 << 16));
  auto r = Store::open(name);
  uint64_t missed = 99;
  CHECK_EQ(r->notify_head(), 0u);
  CHECK(r->read_events(0, 100, missed).empty());
  CHECK_EQ(missed, 0u);

  const ObjectId A = make_id(1), B = make_id(2), C = make_id(3);
  put(*s, A, 10);
  put(*s, B, 10);
  s->create_object(C, 10, {});
  s->abort(C);  // an unsealed object was never announced: no event
  s->remove(A);
  s->evict(1);  // B
  CHECK(!s->contains(B));
  CHECK_EQ(r->notify_head(), 4u);
  CHECK_EQ(r->stats().notify_head, 4u);

  auto ev = r->read_events(0, 100, missed);
  CHECK_EQ(missed, 0u);
  REQUIRE_EQ(ev.size(), 4u);
  const EventType types[] = {EventType::Sealed, EventType::Sealed, EventType::Deleted, EventType::Deleted};
  const ObjectId ids[] = {A, B, A, B};
  for (size_t i = 0; i < 4; ++i) {
    CHECK_EQ(ev[i].seq, i);
    CHECK(ev[i].type == types[i]);
    CHECK(ev[i].id == ids[i]);
  }
  // Paging.
  ev = r->read_events(1, 2, missed);
  REQUIRE_EQ(ev.size(), 2u);
  CHECK_EQ(ev[0].seq, 1u);
  CHECK_EQ(ev[1].seq, 2u);
  CHECK(r->read_events(4, 100, missed).empty());
  CHECK(r->read_events(1000, 100, missed).empty());  // past the head: nothing, no miss
  CHECK_EQ(missed, 0u);
  CHECK(r->read_events(0, 0, missed).empty());
}

TEST(notifications_overflow_reports_missed) {
  ShmName name("notify-overflow");
  auto o = options(1 << 16);
  o.notify_capacity = 16;
  auto s = Store::create(name, o);
  for (int i = 0; i < 20; ++i) put(*s, make_id(i), 10);
  CHECK_EQ(s->notify_head(), 20u);
  uint64_t missed = 0;
  auto ev = s->read_events(0, 100, missed);
  CHECK_EQ(missed, 4u);
  REQUIRE_EQ(ev.size(), 16u);
  for (size_t i = 0; i < ev.size(); ++i) {
    CHECK_EQ(ev[i].seq, i + 4);
    CHECK(ev[i].type == EventType::Sealed);
    CHECK(ev[i].id == make_id(i + 4));
  }
  ev = s->read_events(3, 2, missed);
  CHECK_EQ(missed, 1u);
  REQUIRE_EQ(ev.size(), 2u);
  CHECK_EQ(ev[0].seq, 4u);
  ev = s->read_events(10, 100, missed);
  CHECK_EQ(missed, 0u);
  CHECK_EQ(ev.size(), 10u);
  // Wrap around many times: still the newest 16.
  for (int i = 0; i < 20; ++i) s->remove(make_id(i));
  ev = s->read_events(0, 100, missed);
  CHECK_EQ(missed, 24u);
  REQUIRE_EQ(ev.size(), 16u);
  CHECK_EQ(ev.back().seq, 39u);
  CHECK(ev.back().type == EventType::Deleted);
  CHECK(ev.back().id == make_id(19));
}

// ---- cursors, clients ------------------------------------------------------------------------

TEST(cursors) {
  ShmName name("cursors");
  auto a = Store::create(name, options(4096));
  auto b = Store::open(name);
  auto sorted = [](std::vector<uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  CHECK(b->cursor_values(7).empty());
  a->set_cursor(7, 100);
  CHECK(b->cursor_values(7) == std::vector<uint64_t>{100});
  a->set_cursor(7, 150);
  CHECK(b->cursor_values(7) == std::vector<uint64_t>{150});
  b->set_cursor(7, 5);
  CHECK(sorted(a->cursor_values(7)) == (std::vector<uint64_t>{5, 150}));
  CHECK(a->cursor_values(8).empty());
  CHECK(a->cursor_values(0).empty());
  CHECK_THROWS_CODE(a->set_cursor(0, 1), Errc::InvalidArgument);
  a->clear_cursor(7);
  CHECK(b->cursor_values(7) == std::vector<uint64_t>{5});
  a->clear_cursor(12345);  // absent: no effect
  // A handle's cursors die with it.
  {
    auto c = Store::open(name);
    c->set_cursor(7, 9);
    c->set_cursor(8, 1);
    CHECK(sorted(a->cursor_values(7)) == (std::vector<uint64_t>{5, 9}));
  }
  CHECK(a->cursor_values(7) == std::vector<uint64_t>{5});
  CHECK(a->cursor_values(8).empty());
  b.reset();
  CHECK(a->cursor_values(7).empty());
  // A new client in the freed slot starts with no cursors.
  auto d = Store::open(name);
  CHECK(d->cursor_values(7).empty());
}

TEST(at_most_8_cursors_per_client) {
  ShmName name("cursor-limit");
  auto a = Store::create(name, options(4096));
  auto b = Store::open(name);
  for (uint64_t k = 1; k <= shmstore::kCursorsPerClient; ++k) a->set_cursor(k, k * 10);
  CHECK_THROWS_CODE(a->set_cursor(100, 1), Errc::InvalidArgument);
  CHECK_NOTHROW(a->set_cursor(3, 33));  // updating one it has is fine
  CHECK(b->cursor_values(3) == std::vector<uint64_t>{33});
  CHECK_NOTHROW(b->set_cursor(100, 1));  // the limit is per client
  a->clear_cursor(4);
  CHECK_NOTHROW(a->set_cursor(100, 2));
  CHECK_EQ(b->cursor_values(100).size(), 2u);
  CHECK(b->cursor_values(4).empty());
}

TEST(clients_and_too_many_clients) {
  ShmName name("clients");
  auto a = Store::create(name, options(4096, 16, 2));
  auto b = Store::open(name);
  CHECK_THROWS_CODE(Store::open(name), Errc::TooManyClients);
  CHECK_THROWS_CODE(Store::open(name), Errc::TooManyClients);  // a failed open leaks nothing
  auto list = a->clients();
  REQUIRE_EQ(list.size(), 2u);
  int self = 0;
  for (const auto& c : list) {
    CHECK_EQ(c.pid, ::getpid());
    CHECK(c.attached_unix_ms > 0);
    if (c.self) {
      ++self;
      CHECK_EQ(c.slot, a->slot());
    }
  }
  CHECK_EQ(self, 1);
  CHECK_EQ(a->stats().clients, 2u);
  CHECK_EQ(a->stats().max_clients, 2u);
  b.reset();
  CHECK_EQ(a->stats().clients, 1u);
  CHECK_EQ(a->clients().size(), 1u);
  auto c = Store::open(name);  // the slot is free again
  CHECK_EQ(a->stats().clients, 2u);
  CHECK_EQ(a->stats().reclaimed_clients, 0u);  // a clean detach is not a reclaim
}

TEST(closing_a_handle_releases_and_aborts) {
  ShmName name("close");
  auto a = Store::create(name, options(1 << 16));
  put(*a, make_id(1), 1000, 1);
  put(*a, make_id(2), 1000, 2);
  {
    auto b = Store::open(name);
    b->create_object(make_id(3), 500, {});  // unsealed: aborted at close
    REQUIRE(b->get(make_id(1)).has_value());
    REQUIRE(b->get(make_id(2)).has_value());
    CHECK(!a->remove(make_id(2)));  // deferred while b holds it
    CHECK_EQ(find_info(a->list(), make_id(1))->holders, 1u);
  }
  CHECK(find_info(a->list(), make_id(3)) == nullptr);
  CHECK(find_info(a->list(), make_id(2)) == nullptr);  // freed with b's last reference
  CHECK_EQ(find_info(a->list(), make_id(1))->holders, 0u);
  auto st = a->stats();
  CHECK_EQ(st.aborts, 1u);
  CHECK_EQ(st.deleting, 0u);
  CHECK_EQ(st.used_bytes, alloc_size(1000, 0));
  CHECK_EQ(st.clients, 1u);
  check_accounting(*a);
}

TEST(stats_list_and_used_bytes_back_to_zero) {
  ShmName name("accounting");
  auto a = Store::create(name, options(1 << 20, 256));
  auto b = Store::open(name);
  uint64_t expected = 0;
  std::vector<std::pair<ObjectView, int>> held;
  for (int i = 0; i < 100; ++i) {
    const uint64_t size = static_cast<uint64_t>(i) * 37 % 3000;
    const std::string meta(static_cast<size_t>(i % 5) * 3, 'x');
    ObjectView w = a->create_object(make_id(i), size, as_bytes(meta));
    fill_pattern(w.data, size, i);
    if (i % 10 == 9) {
      a->abort(make_id(i));
      continue;
    }
    a->seal(make_id(i));
    expected += alloc_size(size, meta.size());
    if (i % 3 == 0) held.emplace_back(*b->get(make_id(i)), i);
  }
  auto st = a->stats();
  CHECK_EQ(st.used_bytes, expected);
  CHECK_EQ(st.objects, 90u);
  CHECK_EQ(st.sealed, 90u);
  CHECK_EQ(st.creates, 100u);
  CHECK_EQ(st.aborts, 10u);
  CHECK_EQ(st.capacity, uint64_t{1} << 20);
  CHECK_EQ(st.max_objects, 256u);
  CHECK_EQ(a->list().size(), 90u);
  check_accounting(*a);

  for (int i = 0; i < 100; ++i)
    if (i % 10 != 9) a->remove(make_id(i));
  st = a->stats();
  CHECK_EQ(st.objects, 0u);
  CHECK_EQ(st.deleting, held.size());
  CHECK(st.used_bytes > 0);
  check_accounting(*a);
  for (const auto& [v, seed] : held) {
    CHECK(has_pattern(v.data, v.data_size, static_cast<uint64_t>(seed)));  // intact until released
    b->release(v.entry, v.generation);
  }
  st = a->stats();
  CHECK_EQ(st.used_bytes, 0u);
  CHECK_EQ(st.deleting, 0u);
  CHECK_EQ(st.objects, 0u);
  CHECK_EQ(st.free_extents, 1u);
  CHECK_EQ(st.largest_free, st.capacity);
  CHECK_EQ(st.deletes, 90u);
  CHECK(a->list().empty());
}
