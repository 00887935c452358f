// A store handle: one attached client of one segment. Not thread-safe: the addon serialises
// calls on a handle (the JS thread), except change_seq and the wait_change calls, which any
// thread may call while the handle lives.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "layout.h"
#include "unique_fd.h"

namespace shmstore {

using ObjectId = std::array<uint8_t, kIdSize>;

struct StoreOptions {
  uint64_t capacity = 0;
  uint32_t max_objects = 1024;
  uint32_t max_clients = 64;
  uint32_t notify_capacity = 4096;
  Eviction eviction = Eviction::Lru;
  uint32_t mode = 0600;
};

// Where an object's bytes are in this process. `entry`/`generation` name it for release.
struct ObjectView {
  uint32_t entry = 0;
  uint32_t generation = 0;
  uint8_t* data = nullptr;
  uint64_t data_size = 0;
  uint8_t* metadata = nullptr;
  uint64_t metadata_size = 0;
};

// What copy_out found: the object's sizes; copied when its bytes went into the caller's buffer.
struct CopyResult {
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
  bool copied = false;
};

struct ObjectInfo {
  ObjectId id{};
  ObjectState state = ObjectState::Free;
  uint64_t data_size = 0;
  uint64_t metadata_size = 0;
  uint32_t holders = 0;
  uint32_t creator_slot = 0;
};

struct ClientInfo {
  uint32_t slot = 0;
  int32_t pid = 0;
  uint64_t attached_unix_ms = 0;
  bool self = false;
};

struct StoreStats {
  uint64_t capacity, used_bytes, largest_free;
  uint32_t objects, sealed, deleting, clients, max_objects, max_clients, free_extents;
  uint32_t waiters;  // threads asleep on change_seq (or about to be), in every process
  uint64_t evictions, evicted_bytes, creates, seals, deletes, aborts, repairs,
      reclaimed_clients, notify_head;
  Eviction eviction;
};

struct Event {
  uint64_t seq;
  EventType type;
  ObjectId id;
};

class Store {
 public:
  static std::unique_ptr<Store> create(std::string_view name, const StoreOptions& options);
  static std::unique_ptr<Store> open(std::string_view name);
  static void unlink(std::string_view name);
  // Throws InvalidArgument unless the name is safe as a single file name under the shm dir.
  static void check_name(std::string_view name);
  // Maps every page of the segment into this process now, writable, so that later accesses
  // take no page faults. Costs ~0.2 s (measured here) and 2 MiB of page tables per GiB.
  void prefault();
  static std::string path_of(std::string_view name);

  // Detaches: releases this client's references, aborts its unsealed objects, frees its slot.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Objects. create/get hand out pointers into the mapping, valid until this handle dies.
  ObjectView create_object(const ObjectId& id, uint64_t data_size,
                           std::span<const uint8_t> metadata);
  // As create_object, but while the store is full waits up to timeout_ns (-1: forever) for
  // room (eviction 'none', or everything pinned).
  ObjectView create_object_wait(const ObjectId& id, uint64_t data_size,
                                std::span<const uint8_t> metadata, int64_t timeout_ns);
  // keep_reference: the creator goes on holding the object (it cannot be evicted) until it
  // releases it; the returned view names it for release().
  ObjectView seal(const ObjectId& id, bool keep_reference = false);
  void abort(const ObjectId& id);
  // create + copy + seal, the data gathered from pieces stored one after another. Up to
  // kCopyInLockMax bytes in one lock round trip (the copy holds the lock); larger objects are
  // copied outside it, large pieces with copy_streaming.
  ObjectView put_object(const ObjectId& id, std::span<const std::span<const uint8_t>> pieces,
                        std::span<const uint8_t> metadata, bool keep_reference);
  // put_object, but nullopt instead of StoreFull: a full store is routine for a lossless
  // producer, which would otherwise pay for an exception and its message at every try.
  std::optional<ObjectView> try_put_object(const ObjectId& id,
                                           std::span<const std::span<const uint8_t>> pieces,
                                           std::span<const uint8_t> metadata, bool keep_reference);
  std::optional<ObjectView> get(const ObjectId& id);
  // For small objects, cheaper than get + copy + release: copies a sealed object's data (then
  // its metadata, with_metadata) into dest, if it all fits, taking no reference; in a store
  // with eviction 'none' without taking the lock unless a writer gets in the way (a seqlock
  // on table_seq). dest is at most kCopyInLockMax bytes. nullopt if id is not sealed. When it
  // returns nullopt or does not copy, dest's bytes are unspecified.
  std::optional<CopyResult> copy_out(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata);
  std::optional<CopyResult> copy_out_wait(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata,
                                          int64_t timeout_ns);
  // The most that put_object and copy_out copy while holding the lock (others wait meanwhile).
  static constexpr uint64_t kCopyInLockMax = 16 << 10;
  // Waits up to timeout_ns (-1: forever) for id to be sealed; nullopt on timeout.
  std::optional<ObjectView> get_wait(const ObjectId& id, int64_t timeout_ns);
  void release(uint32_t entry, uint32_t generation);
  bool contains(const ObjectId& id);
  // Makes id invisible at once; its memory is freed when the last holder releases.
  // Returns true if it was freed now.
  bool remove(const ObjectId& id);
  uint64_t evict(uint64_t bytes);
  std::vector<ObjectInfo> list();
  std::vector<ClientInfo> clients();
  StoreStats stats();

  // Per-client cursors: small named counters that die with their client (streams keep
  // subscriber positions and producer heads here). key 0 is reserved. notify=false skips the
  // change_seq bump for a value nobody waits on (a stream head moves right after a seal).
  void set_cursor(uint64_t key, uint64_t value, bool notify = true);
  void clear_cursor(uint64_t key);
  std::vector<uint64_t> cursor_values(uint64_t key);

  // Change notification: change_seq moves on every seal, delete, abort, release and cursor
  // store. wait_change sleeps while it still equals `seen`.
  uint32_t change_seq() const;
  bool wait_change(uint32_t seen, const timespec* deadline);
  // A handle (of any store) and the change_seq it last saw.
  struct ChangeWatch {
    Store* store;
    uint32_t seen;
  };
  // Returns once some watched store's change_seq differs from its `seen`, or *local (a
  // process-local word) differs from local_seen: how one thread waits for every handle of the
  // process, and how the process wakes that thread (futex::wake_local) without a store change.
  static void wait_any_change(std::span<const ChangeWatch> watches, uint32_t* local, uint32_t local_seen);

  // Notifications: events [from, head). `missed` counts events overwritten before reading.
  uint64_t notify_head();
  std::vector<Event> read_events(uint64_t from, size_t max, uint64_t& missed);

  uint64_t capacity() const { return capacity_; }
  uint32_t slot() const { return slot_; }
  const std::string& name() const { return name_; }

  // Test hook: takes the lock, leaves a half-done allocation behind, calls on_parked and
  // sleeps forever (a test kills the process there to exercise EOWNERDEAD repair).
  [[noreturn]] void park_in_lock_for_test(const std::function<void()>& on_parked);

 private:
  class Locked;
  Store(std::string name, UniqueFd fd, Mapping map);

  void bind_regions(const SegmentHeader& validated);
  void attach_client();
  void detach_client() noexcept;

  struct PublishIfEvicted;
  struct UnlockedCopy {
    bool settled = false;  // no writer overlapped: result is what the lock would have given
    std::optional<CopyResult> result;
  };
  UnlockedCopy copy_out_unlocked(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata) const;
  void check_fits(uint64_t data_size, uint64_t metadata_size) const;
  template <class Attempt>
  auto retry_until(int64_t timeout_ns, Attempt attempt) -> decltype(attempt());

  // if_room: nullopt when the store is full, instead of StoreFull.
  std::optional<ObjectView> create_unsealed(const ObjectId& id, uint64_t data_size,
                                            std::span<const uint8_t> metadata, bool if_room);
  std::optional<ObjectView> put_pieces(const ObjectId& id,
                                       std::span<const std::span<const uint8_t>> pieces,
                                       std::span<const uint8_t> metadata, bool keep_reference,
                                       bool if_room);

  // Everything below runs with the mutex held.
  std::optional<ObjectView> create_locked(const ObjectId& id, uint64_t data_size,
                                          uint64_t metadata_size, PublishIfEvicted& eviction,
                                          bool if_room);
  void seal_locked(uint32_t entry, const ObjectId& id, bool keep_reference);
  void repair_locked();
  void reclaim_dead_clients_locked();
  void release_slot_locked(uint32_t slot);
  bool slot_alive_locked(uint32_t slot) const;
  int64_t find_locked(const ObjectId& id) const;
  void index_insert_locked(uint32_t entry);
  void index_erase_locked(uint32_t entry);
  std::optional<uint64_t> alloc_locked(uint64_t size);
  void free_extent_locked(uint64_t offset, uint64_t size);
  void free_entry_locked(uint32_t entry);
  bool evict_one_locked();
  void emit_locked(EventType type, const ObjectId& id);
  ObjectEntry& entry_at(uint32_t i) const;
  ObjectView view_of(uint32_t entry) const;
  void publish_change();

  std::string name_;
  UniqueFd fd_;
  Mapping map_;
  SegmentHeader* hdr_ = nullptr;
  ClientSlot* clients_ = nullptr;
  ObjectEntry* objects_ = nullptr;
  uint32_t* index_ = nullptr;
  uint32_t* entry_free_ = nullptr;
  FreeExtent* extents_ = nullptr;
  NotifyEvent* notify_ = nullptr;
  uint8_t* data_ = nullptr;
  // Copies of the validated immutable header fields: never re-read from shared memory, so a
  // process that scribbles over the header cannot make us index out of bounds.
  uint64_t capacity_ = 0;
  uint32_t max_objects_ = 0, max_clients_ = 0, index_mask_ = 0, notify_capacity_ = 0;
  Eviction eviction_ = Eviction::Lru;
  uint32_t slot_ = kNoSlot;
};

}  // namespace shmstore
