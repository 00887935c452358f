// The derived tables: the id index (open addressing, linear probing, backward-shift delete, so
// no tombstones), the free-entry stack and the sorted free-extent list of the data region.
// All run with the mutex held; repair_locked rebuilds all three from the object entries.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "errors.h"
#include "store.h"

namespace shmstore {

namespace {

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Ids are random or (for streams) a fixed prefix plus a counter: mix all 20 bytes.
uint64_t hash_id(const ObjectId& id) {
  uint32_t tail;
  std::memcpy(&tail, id.data() + 16, 4);
  uint64_t x = load64(id.data()) ^ (load64(id.data() + 8) * 0x9e3779b97f4a7c15ULL) ^ tail;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

ObjectEntry& Store::entry_at(uint32_t i) const {
  if (i >= max_objects_) fail(Errc::BadSegment, "bad segment: object index out of range");
  return objects_[i];
}

int64_t Store::find_locked(const ObjectId& id) const {
  for (uint64_t pos = hash_id(id) & index_mask_, probes = 0; probes <= index_mask_;
       pos = (pos + 1) & index_mask_, ++probes) {
    const uint32_t v = index_[pos];
    if (v == 0) return -1;
    const ObjectEntry& e = entry_at(v - 1);
    if (std::memcmp(e.id, id.data(), kIdSize) == 0) return v - 1;
  }
  return -1;
}

void Store::index_insert_locked(uint32_t entry) {
  ObjectId id;
  std::memcpy(id.data(), objects_[entry].id, kIdSize);
  uint64_t pos = hash_id(id) & index_mask_;
  // index_slots >= 2 * max_objects, so an empty slot exists unless the segment is corrupted.
  for (uint64_t probes = 0; index_[pos] != 0; pos = (pos + 1) & index_mask_)
    if (++probes > index_mask_) fail(Errc::BadSegment, "bad segment: the id index is full");
  index_[pos] = entry + 1;
}

void Store::index_erase_locked(uint32_t entry) {
  ObjectId id;
  std::memcpy(id.data(), objects_[entry].id, kIdSize);
  uint64_t pos = hash_id(id) & index_mask_;
  for (uint64_t probes = 0; index_[pos] != entry + 1; pos = (pos + 1) & index_mask_) {
    if (index_[pos] == 0 || ++probes > index_mask_) return;  // not indexed
  }
  // Backward-shift: pull later members of the probe run into the hole.
  uint64_t hole = pos;
  uint64_t probes = 0;
  for (uint64_t next = (hole + 1) & index_mask_; index_[next] != 0; next = (next + 1) & index_mask_) {
    if (++probes > index_mask_) fail(Errc::BadSegment, "bad segment: the id index has no empty slot");
    ObjectId other;
    std::memcpy(other.data(), entry_at(index_[next] - 1).id, kIdSize);
    const uint64_t home = hash_id(other) & index_mask_;
    // Move it if its home is not within (hole, next] cyclically.
    const bool in_range = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
    if (!in_range) {
      index_[hole] = index_[next];
      hole = next;
    }
  }
  index_[hole] = 0;
}

std::optional<uint64_t> Store::alloc_locked(uint64_t size) {
  const uint32_t n = hdr_->extent_count;
  if (n > max_objects_ + 1) fail(Errc::BadSegment, "bad segment: extent count out of range");
  // First fit keeps allocations packed toward the start and is O(extents).
  for (uint32_t i = 0; i < n; ++i) {
    FreeExtent& x = extents_[i];
    if (x.size < size) continue;
    const uint64_t at = x.offset;
    if (at + size > capacity_) fail(Errc::BadSegment, "bad segment: free extent past the end");
    if (x.size == size) {
      std::memmove(&extents_[i], &extents_[i + 1], (n - i - 1) * sizeof(FreeExtent));
      hdr_->extent_count = n - 1;
    } else {
      x.offset += size;
      x.size -= size;
    }
    hdr_->used_bytes += size;
    return at;
  }
  return std::nullopt;
}

void Store::free_extent_locked(uint64_t offset, uint64_t size) {
  uint32_t n = hdr_->extent_count;
  if (n > max_objects_) fail(Errc::BadSegment, "bad segment: extent count out of range");
  // Position of the first extent after `offset`.
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (extents_[mid].offset < offset) lo = mid + 1; else hi = mid;
  }
  if ((lo > 0 && extents_[lo - 1].offset + extents_[lo - 1].size > offset) ||
      (lo < n && offset + size > extents_[lo].offset))
    fail(Errc::BadSegment, "bad segment: freeing a range that is already free");
  const bool merge_prev = lo > 0 && extents_[lo - 1].offset + extents_[lo - 1].size == offset;
  const bool merge_next = lo < n && offset + size == extents_[lo].offset;
  if (merge_prev && merge_next) {
    extents_[lo - 1].size += size + extents_[lo].size;
    std::memmove(&extents_[lo], &extents_[lo + 1], (n - lo - 1) * sizeof(FreeExtent));
    --n;
  } else if (merge_prev) {
    extents_[lo - 1].size += size;
  } else if (merge_next) {
    extents_[lo].offset = offset;
    extents_[lo].size += size;
  } else {
    std::memmove(&extents_[lo + 1], &extents_[lo], (n - lo) * sizeof(FreeExtent));
    extents_[lo] = FreeExtent{offset, size};
    ++n;
  }
  hdr_->extent_count = n;
  hdr_->used_bytes -= size;
}

void Store::free_entry_locked(uint32_t entry) {
  ObjectEntry& e = objects_[entry];
  const uint64_t offset = e.offset, size = e.alloc_size;
  // A corrupted range must not reach the allocator: it would hand out live objects' bytes.
  if (offset % kAlign != 0 || size == 0 || size % kAlign != 0 || offset > capacity_ || size > capacity_ - offset)
    fail(Errc::BadSegment, "bad segment: object entry out of bounds");
  // Free the entry first: if we die below, repair sees a Free entry and rebuilds the extents.
  std::atomic_ref<uint32_t>(e.state).store(static_cast<uint32_t>(ObjectState::Free), std::memory_order_release);
  free_extent_locked(offset, size);
  if (hdr_->entry_free_count >= max_objects_)
    fail(Errc::BadSegment, "bad segment: free-entry stack overflow");
  entry_free_[hdr_->entry_free_count++] = entry;
}

}  // namespace shmstore
