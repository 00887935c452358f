// A corrupted or hostile segment must give ERR_BAD_SEGMENT, never an out-of-bounds access.
// Each case writes a valid store, damages its file through a separate descriptor (pwrite or
// ftruncate of /dev/shm/<name>), then runs the call under test in a forked child, so that a
// crash shows up as a failed check with the signal's name instead of killing the runner.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <optional>

#include "check.h"
#include "test_util.h"

using namespace testutil;
using shmstore::NotifyEvent;
using shmstore::ObjectEntry;
using shmstore::ObjectState;
using shmstore::SegmentHeader;

namespace {

constexpr uint64_t kCapacity = 1 << 16;
const ObjectId kX = make_id(1);  // the object whose entry some cases corrupt
const ObjectId kY = make_id(2);  // a healthy neighbour

// Child exit codes.
constexpr int kThrewBadSegment = 0, kThrewOther = 20, kNoThrow = 21;

// A valid store holding X (1000 bytes) and Y (500 bytes), both sealed; no handle stays open.
uint64_t make_store(const ShmName& name) {
  auto s = Store::create(name, options(kCapacity, 16, 8));
  put(*s, kX, 1000, 1, "mx");
  put(*s, kY, 500, 2, "my");
  struct stat st{};
  if (::stat(name.path().c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

template <typename T>
bool poke(const ShmName& name, uint64_t offset, T value) {
  shmstore::UniqueFd fd(::open(name.path().c_str(), O_RDWR | O_CLOEXEC));
  return fd && ::pwrite(fd.get(), &value, sizeof value, static_cast<off_t>(offset)) == sizeof value;
}

template <typename T>
T peek(const ShmName& name, uint64_t offset) {
  T value{};
  shmstore::UniqueFd fd(::open(name.path().c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::pread(fd.get(), &value, sizeof value, static_cast<off_t>(offset)) != sizeof value)
    std::abort();
  return value;
}

bool truncate_to(const ShmName& name, uint64_t size) {
  shmstore::UniqueFd fd(::open(name.path().c_str(), O_RDWR | O_CLOEXEC));
  return fd && ::ftruncate(fd.get(), static_cast<off_t>(size)) == 0;
}

// Runs op in a child; the child exits kThrewBadSegment if op threw BadSegment.
int expect_bad_segment_in_child(const std::function<void()>& op) {
  return run_isolated([&]() -> int {
    try {
      op();
    } catch (const shmstore::Error& e) {
      if (e.code() == Errc::BadSegment) return kThrewBadSegment;
      std::fprintf(stderr, "child: threw %s: %s\n", shmstore::code_name(e.code()), e.what());
      return kThrewOther;
    }
    std::fprintf(stderr, "child: no exception\n");
    return kNoThrow;
  });
}

#define CHECK_BAD_SEGMENT(what, op)                                                         \
  do {                                                                                      \
    const int status_ = expect_bad_segment_in_child(op);                                    \
    if (!(WIFEXITED(status_) && WEXITSTATUS(status_) == kThrewBadSegment))                  \
      ::check::report(__FILE__, __LINE__,                                                   \
                      std::string(what) + ": expected ERR_BAD_SEGMENT, child ended with " + \
                          describe_status(status_));                                        \
  } while (0)

// The file offset of the entry holding id (read through the file, not through a handle).
std::optional<uint64_t> entry_offset(const ShmName& name, const ObjectId& id) {
  const auto objects_offset = peek<uint64_t>(name, offsetof(SegmentHeader, objects_offset));
  const auto max_objects = peek<uint32_t>(name, offsetof(SegmentHeader, max_objects));
  for (uint32_t i = 0; i < max_objects; ++i) {
    const uint64_t at = objects_offset + uint64_t{i} * sizeof(ObjectEntry);
    const auto e = peek<ObjectEntry>(name, at);
    if (e.state != static_cast<uint32_t>(ObjectState::Free) && std::memcmp(e.id, id.data(), id.size()) == 0)
      return at;
  }
  return std::nullopt;
}

// Reads every byte of a view (so a wild pointer faults in the child).
uint64_t touch(const shmstore::ObjectView& v) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < v.data_size; ++i) sum += v.data[i];
  for (uint64_t i = 0; i < v.metadata_size; ++i) sum += v.metadata[i];
  return sum;
}

}  // namespace

// Sanity of the fixture itself: an untouched store opens and reads back.
TEST(untouched_store_opens) {
  ShmName name("pristine");
  REQUIRE(make_store(name) > kCapacity);
  auto s = Store::open(name);
  auto v = s->get(kX);
  REQUIRE(v.has_value());
  CHECK(has_pattern(v->data, v->data_size, 1));
  s->release(v->entry, v->generation);
  REQUIRE(entry_offset(name, kX).has_value());
}

TEST(bad_magic) {
  ShmName name("magic");
  make_store(name);
  REQUIRE(poke<uint64_t>(name, offsetof(SegmentHeader, magic), 0x0123456789abcdefULL));
  const int64_t t0 = shmstore::futex::monotonic_ns();
  CHECK_BAD_SEGMENT("garbage magic", [&] { Store::open(name); });
  CHECK(shmstore::futex::monotonic_ns() - t0 < 1'000'000'000);  // no wait for a foreign file
}

TEST(zero_magic_is_a_store_never_initialised) {
  ShmName name("magic0");
  make_store(name);
  REQUIRE(poke<uint64_t>(name, offsetof(SegmentHeader, magic), 0));
  const int64_t t0 = shmstore::futex::monotonic_ns();
  CHECK_BAD_SEGMENT("zero magic", [&] { Store::open(name); });
  CHECK(shmstore::futex::monotonic_ns() - t0 < 20'000'000'000);  // gives up after a short wait
}

TEST(bad_header_fields) {
  struct Case {
    const char* what;
    size_t offset;
    size_t width;  // 4 or 8
    uint64_t value;
    bool relative;  // add value to the current field instead of replacing it
  };
  const Case cases[] = {
      {"layout_version 1", offsetof(SegmentHeader, layout_version), 4, 1, false},
      {"layout_version 3", offsetof(SegmentHeader, layout_version), 4, 3, false},
      {"layout_version 0", offsetof(SegmentHeader, layout_version), 4, 0, false},
      {"header_size", offsetof(SegmentHeader, header_size), 4, 64, true},
      {"segment_size +4096", offsetof(SegmentHeader, segment_size), 8, 4096, true},
      {"segment_size 0", offsetof(SegmentHeader, segment_size), 8, 0, false},
      {"segment_size huge", offsetof(SegmentHeader, segment_size), 8, ~uint64_t{0}, false},
      {"capacity 2^45", offsetof(SegmentHeader, capacity), 8, uint64_t{1} << 45, false},
      {"capacity huge", offsetof(SegmentHeader, capacity), 8, ~uint64_t{0} - 63, false},
      {"capacity 0", offsetof(SegmentHeader, capacity), 8, 0, false},
      {"capacity +1 MiB", offsetof(SegmentHeader, capacity), 8, 1 << 20, true},
      {"max_objects 0", offsetof(SegmentHeader, max_objects), 4, 0, false},
      {"max_objects 2^30", offsetof(SegmentHeader, max_objects), 4, 1u << 30, false},
      {"max_objects +1000", offsetof(SegmentHeader, max_objects), 4, 1000, true},
      {"max_clients 0", offsetof(SegmentHeader, max_clients), 4, 0, false},
      {"max_clients 200", offsetof(SegmentHeader, max_clients), 4, 200, false},
      {"max_clients +64", offsetof(SegmentHeader, max_clients), 4, 64, true},
      {"index_slots", offsetof(SegmentHeader, index_slots), 4, 1u << 20, false},
      {"notify_capacity 3", offsetof(SegmentHeader, notify_capacity), 4, 3, false},
      {"notify_capacity 2^30", offsetof(SegmentHeader, notify_capacity), 4, 1u << 30, false},
      {"clients_offset past the end", offsetof(SegmentHeader, clients_offset), 8, uint64_t{1} << 40, false},
      {"objects_offset past the end", offsetof(SegmentHeader, objects_offset), 8, uint64_t{1} << 40, false},
      {"index_offset past the end", offsetof(SegmentHeader, index_offset), 8, uint64_t{1} << 40, false},
      {"entry_free_offset past the end", offsetof(SegmentHeader, entry_free_offset), 8, uint64_t{1} << 40, false},
      {"extents_offset past the end", offsetof(SegmentHeader, extents_offset), 8, uint64_t{1} << 40, false},
      {"notify_offset past the end", offsetof(SegmentHeader, notify_offset), 8, uint64_t{1} << 40, false},
      {"data_offset past the end", offsetof(SegmentHeader, data_offset), 8, uint64_t{1} << 40, false},
      {"data_offset +4096", offsetof(SegmentHeader, data_offset), 8, 4096, true},
      {"data_offset -64 (overlaps notify)", offsetof(SegmentHeader, data_offset), 8, ~uint64_t{63}, true},
      {"objects_offset misaligned", offsetof(SegmentHeader, objects_offset), 8, 8, true},
      {"eviction 5", offsetof(SegmentHeader, eviction), 4, 5, false},
  };
  for (const Case& c : cases) {
    ShmName name("header");
    make_store(name);
    bool ok;
    if (c.width == 4) {
      uint32_t v = static_cast<uint32_t>(c.value);
      if (c.relative) v += peek<uint32_t>(name, c.offset);
      ok = poke<uint32_t>(name, c.offset, v);
    } else {
      uint64_t v = c.value;
      if (c.relative) v += peek<uint64_t>(name, c.offset);
      ok = poke<uint64_t>(name, c.offset, v);
    }
    REQUIRE(ok);
    CHECK_BAD_SEGMENT(c.what, [&] { Store::open(name); });
  }
}

TEST(truncated_or_extended_file) {
  ShmName probe("probe");
  const uint64_t size = make_store(probe);
  REQUIRE(size > 8192);
  struct Case {
    const char* what;
    uint64_t size;
  };
  const Case cases[] = {
      {"half the file", size / 2},
      {"one page short", size - 4096},
      {"one byte short", size - 1},
      {"one page more", size + 4096},
      {"smaller than the header", 100},
      {"empty", 0},
  };
  for (const Case& c : cases) {
    ShmName name("truncated");
    make_store(name);
    REQUIRE(truncate_to(name, c.size));
    CHECK_BAD_SEGMENT(c.what, [&] { Store::open(name); });
  }
}

// An object entry whose offset or sizes point outside the data region: get() must refuse it
// rather than hand out a pointer past the mapping.
TEST(object_entry_out_of_bounds) {
  struct Case {
    const char* what;
    size_t field;
    uint64_t value;
  };
  const Case cases[] = {
      {"offset past capacity", offsetof(ObjectEntry, offset), kCapacity + 4096},
      {"offset far past capacity", offsetof(ObjectEntry, offset), uint64_t{1} << 40},
      {"offset wraps", offsetof(ObjectEntry, offset), ~uint64_t{63}},
      {"offset at the very end", offsetof(ObjectEntry, offset), kCapacity - 64},
      {"alloc_size past capacity", offsetof(ObjectEntry, alloc_size), kCapacity * 2},
      {"alloc_size wraps", offsetof(ObjectEntry, alloc_size), ~uint64_t{63}},
      {"data_size past alloc", offsetof(ObjectEntry, data_size), uint64_t{1} << 40},
      {"metadata_size past alloc", offsetof(ObjectEntry, metadata_size), uint64_t{1} << 40},
      {"metadata_size wraps", offsetof(ObjectEntry, metadata_size), ~uint64_t{0}},
  };
  for (const Case& c : cases) {
    ShmName name("entry");
    make_store(name);
    const auto at = entry_offset(name, kX);
    REQUIRE(at.has_value());
    REQUIRE(poke<uint64_t>(name, *at + c.field, c.value));
    // The header is fine, so the store opens; get(X) must throw, and must not crash.
    CHECK_BAD_SEGMENT(c.what, [&] {
      auto s = Store::open(name);
      auto v = s->get(kX);
      if (v) std::fprintf(stderr, "child: get returned a view (sum %llu)\n",
                          static_cast<unsigned long long>(touch(*v)));
    });
    // The rest of the store goes on working.
    auto s = Store::open(name);
    auto y = s->get(kY);
    REQUIRE(y.has_value());
    CHECK(has_pattern(y->data, y->data_size, 2));
    s->release(y->entry, y->generation);
    CHECK_EQ(s->list().size(), 2u);
  }
}

// The free-entry count is read from shared memory: a wild value must not index past the
// free-entry stack.
TEST(entry_free_count_out_of_range) {
  for (const uint32_t bad : {17u, 1000u, 0x7fffffffu, 0xffffffffu}) {
    ShmName name("freecount");
    make_store(name);
    REQUIRE(poke<uint32_t>(name, offsetof(SegmentHeader, entry_free_count), bad));
    CHECK_BAD_SEGMENT("entry_free_count " + std::to_string(bad), [&] {
      auto s = Store::open(name);
      auto v = s->create_object(make_id(50), 100, {});
      std::memset(v.data, 1, v.data_size);
    });
  }
}

// The free-entry stack names an entry that is in use (X's): a create must not take over the
// live entry. Either it notices (BadSegment) or X stays intact and reachable.
TEST(free_entry_stack_names_a_live_entry) {
  ShmName name("freestack");
  make_store(name);
  const auto at = entry_offset(name, kX);
  REQUIRE(at.has_value());
  const auto objects = peek<uint64_t>(name, offsetof(SegmentHeader, objects_offset));
  const auto stack = peek<uint64_t>(name, offsetof(SegmentHeader, entry_free_offset));
  const auto count = peek<uint32_t>(name, offsetof(SegmentHeader, entry_free_count));
  REQUIRE(count > 0);
  const auto x_entry = static_cast<uint32_t>((*at - objects) / sizeof(ObjectEntry));
  REQUIRE(poke<uint32_t>(name, stack + 4ull * (count - 1), x_entry));
  const int status = run_isolated([&]() -> int {
    auto s = Store::open(name);
    try {
      auto v = s->create_object(make_id(50), 100, {});
      std::memset(v.data, 0xab, v.data_size);
      s->seal(make_id(50));
    } catch (const shmstore::Error& e) {
      return e.code() == Errc::BadSegment ? 0 : 40;
    }
    auto x = s->get(kX);
    if (!x) {
      std::fprintf(stderr, "child: X vanished: its entry was reused by the new object\n");
      return 41;
    }
    if (!has_pattern(x->data, x->data_size, 1)) {
      std::fprintf(stderr, "child: X's bytes were overwritten\n");
      return 42;
    }
    return 0;
  });
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    ::check::report(__FILE__, __LINE__,
                    "free-entry stack naming live entry X: expected BadSegment or X intact, child ended with " +
                        describe_status(status) + " (41: X's entry reused, 42: X's bytes overwritten)");
}

TEST(extent_count_out_of_range) {
  for (const uint32_t bad : {18u, 0x7fffffffu}) {
    ShmName name("extcount");
    make_store(name);
    REQUIRE(poke<uint32_t>(name, offsetof(SegmentHeader, extent_count), bad));
    CHECK_BAD_SEGMENT("extent_count " + std::to_string(bad), [&] {
      auto s = Store::open(name);
      s->create_object(make_id(50), 100, {});
    });
    // stats() clamps what it reads and does not crash.
    const int st = run_isolated([&] {
      auto s = Store::open(name);
      return s->stats().capacity == kCapacity ? 0 : 1;
    });
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
}

TEST(free_extent_past_capacity) {
  ShmName name("extent");
  make_store(name);
  const auto extents = peek<uint64_t>(name, offsetof(SegmentHeader, extents_offset));
  REQUIRE(peek<uint32_t>(name, offsetof(SegmentHeader, extent_count)) >= 1);
  REQUIRE(poke<uint64_t>(name, extents + offsetof(shmstore::FreeExtent, offset), kCapacity * 4));
  CHECK_BAD_SEGMENT("free extent past capacity", [&] {
    auto s = Store::open(name);
    auto v = s->create_object(make_id(50), 100, {});
    std::memset(v.data, 1, v.data_size);
  });
}

TEST(index_slot_out_of_range) {
  ShmName name("index");
  make_store(name);
  const auto index = peek<uint64_t>(name, offsetof(SegmentHeader, index_offset));
  const auto slots = peek<uint32_t>(name, offsetof(SegmentHeader, index_slots));
  for (uint32_t i = 0; i < slots; ++i) REQUIRE(poke<uint32_t>(name, index + 4ull * i, 0x7fffffffu));
  CHECK_BAD_SEGMENT("index slot out of range (get)", [&] {
    auto s = Store::open(name);
    auto v = s->get(kX);
    if (v) std::fprintf(stderr, "child: sum %llu\n", static_cast<unsigned long long>(touch(*v)));
  });
  CHECK_BAD_SEGMENT("index slot out of range (create)", [&] {
    auto s = Store::open(name);
    s->create_object(make_id(50), 100, {});
  });
}

TEST(notification_ring_corrupted) {
  ShmName name("ring");
  make_store(name);
  const auto ring = peek<uint64_t>(name, offsetof(SegmentHeader, notify_offset));
  REQUIRE(poke<uint64_t>(name, ring + offsetof(NotifyEvent, seq), 12345));
  CHECK_BAD_SEGMENT("notification seq", [&] {
    auto s = Store::open(name);
    uint64_t missed = 0;
    s->read_events(0, 10, missed);
  });
  // A head far ahead of what was written: the reader is told it missed events, and whatever
  // it reads is checked.
  REQUIRE(poke<uint64_t>(name, ring + offsetof(NotifyEvent, seq), 0));
  REQUIRE(poke<uint64_t>(name, offsetof(SegmentHeader, notify_head), uint64_t{1} << 40));
  CHECK_BAD_SEGMENT("notification head", [&] {
    auto s = Store::open(name);
    uint64_t missed = 0;
    s->read_events(0, 10, missed);
  });
}

// Removing an object whose entry is out of bounds must not poison the allocator: the remove
// fails with BadSegment or drops the entry, and afterwards the accounting still holds
// (used_bytes <= capacity) and a new object never lands on the healthy neighbour Y.
TEST(remove_of_out_of_bounds_entry_keeps_allocator_sane) {
  struct Case {
    const char* what;
    size_t field;
    uint64_t value;
  };
  const Case cases[] = {
      {"offset past capacity", offsetof(ObjectEntry, offset), kCapacity + 4096},
      {"alloc_size past capacity", offsetof(ObjectEntry, alloc_size), kCapacity * 2},
  };
  for (const Case& c : cases) {
    ShmName name("remove-oob");
    make_store(name);
    const auto at = entry_offset(name, kX);
    REQUIRE(at.has_value());
    REQUIRE(poke<uint64_t>(name, *at + c.field, c.value));
    const int status = run_isolated([&]() -> int {
      auto s = Store::open(name);
      try {
        s->remove(kX);
      } catch (const shmstore::Error& e) {
        if (e.code() != Errc::BadSegment) return 30;
      }
      const auto st = s->stats();
      if (st.used_bytes > st.capacity) {
        std::fprintf(stderr, "child: used_bytes %llu > capacity %llu after the remove\n",
                     static_cast<unsigned long long>(st.used_bytes),
                     static_cast<unsigned long long>(st.capacity));
        return 31;
      }
      // Fill the store (Y held, so not evictable); no new object may overwrite Y.
      auto y = s->get(kY);
      if (!y) return 34;
      for (uint64_t i = 0; i < 64; ++i) {
        try {
          auto v = s->create_object(make_id(100 + i), 1000, {});
          std::memset(v.data, 0xab, v.data_size);
          s->seal(make_id(100 + i));
        } catch (const shmstore::Error& e) {
          if (e.code() != Errc::StoreFull && e.code() != Errc::BadSegment) return 32;
        }
      }
      if (!has_pattern(y->data, y->data_size, 2)) {
        std::fprintf(stderr, "child: Y was overwritten by a new object\n");
        return 33;
      }
      return 0;
    });
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      ::check::report(__FILE__, __LINE__, std::string(c.what) + ": child ended with " + describe_status(status));
  }
}
