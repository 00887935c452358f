// The byte layout of a store segment: /dev/shm/<name> (docs/FORMAT.md is the prose of this file).
//
// Order in the file: SegmentHeader | ClientSlot[max_clients] | ObjectEntry[max_objects] |
// uint32 index[index_slots] | uint32 entry_free[max_objects] | FreeExtent[max_objects + 1] |
// NotifyEvent[notify_capacity] | data region (capacity bytes). Every region starts on a
// 64-byte boundary; region_layout() computes the offsets from the four counts, and open
// requires the header to hold exactly those offsets.
//
// All structs are plain data: concurrently accessed fields are read and written through
// std::atomic_ref with the memory order stated at each use; everything else is read or
// written only while holding SegmentHeader::mutex.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>

namespace shmstore {

inline constexpr uint64_t kMagic = 0x3152'5453'4d48'5353ULL;  // "SSHMSTR1" little-endian
inline constexpr uint32_t kLayoutVersion = 2;
inline constexpr size_t kIdSize = 20;
inline constexpr uint64_t kAlign = 64;          // data offsets and region starts
inline constexpr uint32_t kMaxClientsLimit = 128;  // holders bitmap width
inline constexpr uint32_t kMaxObjectsLimit = 1u << 24;
inline constexpr uint32_t kCursorsPerClient = 8;
inline constexpr uint32_t kNoSlot = 0xffff'ffffu;

inline constexpr uint32_t kSlotFree = 0, kSlotLive = 1;  // ClientSlot::state

enum class ObjectState : uint32_t { Free = 0, Created = 1, Sealed = 2, Deleting = 3 };
enum class Eviction : uint32_t { None = 0, Lru = 1 };
enum class EventType : uint32_t { Sealed = 1, Deleted = 2 };

// Invariants (guarded by mutex, except where an atomic is named):
// - magic is written last at create (release) and read first at open (acquire): a non-zero
//   magic means every other header field and region is initialised.
// - The immutable block (magic .. eviction) never changes after create.
// - change_seq is bumped (seq_cst) after every seal, delete, abort, eviction, unpinning
//   release, client detach or reclaim, and cursor store (unless the caller asks not to); it is
//   the futex word of every waiter. waiters counts threads inside futex_wait on it, so a
//   bump can skip FUTEX_WAKE when it is zero (see Store::publish_change for the ordering).
// - used_bytes == sum(alloc_size) over non-Free entries == capacity - sum(free extents).
// - objects counts Created + Sealed entries (the visible ones, all in the index);
//   sealed counts Sealed ones; Deleting entries are in neither and not in the index.
// - Everything from used_bytes down is derived from the entries and rebuilt by repair.
struct alignas(64) SegmentHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t header_size;
  uint64_t segment_size;
  uint64_t capacity;
  uint32_t max_objects;
  uint32_t max_clients;
  uint32_t index_slots;
  uint32_t notify_capacity;
  uint64_t clients_offset;
  uint64_t objects_offset;
  uint64_t index_offset;
  uint64_t entry_free_offset;
  uint64_t extents_offset;
  uint64_t notify_offset;
  uint64_t data_offset;
  uint32_t eviction;
  uint32_t reserved0;

  alignas(64) pthread_mutex_t mutex;
  // Odd while the mutex holder may be changing the tables; a new even value after every
  // locked section (written by the holder only, atomic_ref). Lets copy_out read a small
  // object without the lock, seqlock style: see Store::copy_out_unlocked.
  uint32_t table_seq;

  // Hot words on lines of their own: every waiter in every process reads change_seq.
  alignas(64) uint32_t change_seq;
  alignas(64) uint32_t waiters;

  alignas(64) uint64_t used_bytes;
  uint32_t objects;
  uint32_t sealed;
  uint32_t deleting;
  uint32_t entry_free_count;
  uint32_t extent_count;
  uint32_t clients;
  uint64_t lru_clock;
  uint64_t notify_head;  // sequence number of the next event to write
  uint64_t evictions;
  uint64_t evicted_bytes;
  uint64_t creates;
  uint64_t seals;
  uint64_t deletes;
  uint64_t aborts;
  uint64_t repairs;
  uint64_t reclaimed_clients;
};

// One per attached process (per open store handle). Liveness is the OFD lock its owner holds
// on byte (index) of the segment file, never the pid (pids are reused).
// - state: 0 free, 1 live (guarded by mutex).
// - cursor_keys[i] != 0 names cell i; keys are written under mutex, values with
//   atomic_ref (release by the owner, acquire by readers): readers scan without the lock.
struct alignas(64) ClientSlot {
  uint32_t state;
  int32_t pid;  // informational only (ls/stat)
  uint64_t generation;
  uint64_t attached_unix_ms;
  uint64_t cursor_keys[kCursorsPerClient];
  uint64_t cursor_values[kCursorsPerClient];
};

// One object. Guarded by mutex; a Free entry's other fields mean nothing.
// - offset is 64-aligned, offset + alloc_size <= capacity, and no two non-Free entries overlap.
// - alloc_size == round_up(max(data_size + metadata_size, 1), 64); metadata follows data.
// - holders: bit s set when client slot s holds a reference. A Deleting entry is freed when
//   its holders become empty; a Sealed one with no holders may be evicted (LRU by lru_tick).
// - generation changes whenever the entry is (re)used, so a stale (entry, generation) pair
//   kept by a process never names a different object.
struct ObjectEntry {
  uint8_t id[kIdSize];
  uint32_t state;
  uint64_t data_size;
  uint64_t metadata_size;
  uint64_t offset;
  uint64_t alloc_size;
  uint64_t lru_tick;
  uint64_t holders[kMaxClientsLimit / 64];
  uint32_t creator_slot;
  uint32_t generation;
};

// A free range of the data region. Kept sorted by offset, never adjacent, never empty.
struct FreeExtent {
  uint64_t offset;
  uint64_t size;
};

// Ring of seal/delete events; event n lives at n % notify_capacity (guarded by mutex).
struct NotifyEvent {
  uint64_t seq;
  uint32_t type;
  uint8_t id[kIdSize];
};

static_assert(sizeof(ObjectEntry) == 88);

inline bool has_holder(const ObjectEntry& e) { return (e.holders[0] | e.holders[1]) != 0; }
static_assert(sizeof(NotifyEvent) == 32);
static_assert(sizeof(ClientSlot) % 64 == 0);
static_assert(alignof(SegmentHeader) == 64);
static_assert(sizeof(SegmentHeader) == 448 && offsetof(SegmentHeader, table_seq) == 168);  // docs/FORMAT.md

constexpr uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

struct RegionLayout {
  uint64_t clients_offset, objects_offset, index_offset, entry_free_offset, extents_offset,
      notify_offset, data_offset, segment_size;
};

// Offsets for the given counts; index_slots and notify_capacity are powers of two.
constexpr RegionLayout region_layout(uint32_t max_clients, uint32_t max_objects,
                                     uint32_t index_slots, uint32_t notify_capacity,
                                     uint64_t capacity) {
  RegionLayout l{};
  uint64_t at = round_up(sizeof(SegmentHeader), kAlign);
  l.clients_offset = at;
  at = round_up(at + uint64_t{max_clients} * sizeof(ClientSlot), kAlign);
  l.objects_offset = at;
  at = round_up(at + uint64_t{max_objects} * sizeof(ObjectEntry), kAlign);
  l.index_offset = at;
  at = round_up(at + uint64_t{index_slots} * sizeof(uint32_t), kAlign);
  l.entry_free_offset = at;
  at = round_up(at + uint64_t{max_objects} * sizeof(uint32_t), kAlign);
  l.extents_offset = at;
  at = round_up(at + (uint64_t{max_objects} + 1) * sizeof(FreeExtent), kAlign);
  l.notify_offset = at;
  at = round_up(at + uint64_t{notify_capacity} * sizeof(NotifyEvent), 4096);
  l.data_offset = at;
  l.segment_size = round_up(at + capacity, 4096);
  return l;
}

}  // namespace shmstore
