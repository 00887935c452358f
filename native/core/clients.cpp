// Client slots and crash recovery: attaching, detaching, finding dead clients through their
// OFD locks, and rebuilding every derived table from the object entries after a crash.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "errors.h"
#include "lock.h"
#include "store.h"

namespace shmstore {

namespace {

flock slot_lock(uint32_t slot, short type) {
  flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = slot;  // byte `slot` of the file names the slot; locks past EOF are fine
  fl.l_len = 1;
  return fl;
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

bool Store::slot_alive_locked(uint32_t slot) const {
  if (slot == slot_) return true;
  flock fl = slot_lock(slot, F_WRLCK);
  // Our own OFD never conflicts with itself, so only another open file description (another
  // process, or another handle) reports the byte as locked.
  if (::fcntl(fd_.get(), F_OFD_GETLK, &fl) != 0) return true;  // unknown: assume alive
  return fl.l_type != F_UNLCK;
}

void Store::attach_client() {
  Locked lock(*this);
  reclaim_dead_clients_locked();
  for (uint32_t s = 0; s < max_clients_; ++s) {
    ClientSlot& c = clients_[s];
    if (c.state != kSlotFree) continue;
    flock fl = slot_lock(s, F_WRLCK);
    if (::fcntl(fd_.get(), F_OFD_SETLK, &fl) != 0) continue;  // held: a client mid-exit
    c.pid = static_cast<int32_t>(::getpid());
    c.generation += 1;
    c.attached_unix_ms = unix_ms();
    std::memset(c.cursor_keys, 0, sizeof c.cursor_keys);
    std::memset(c.cursor_values, 0, sizeof c.cursor_values);
    c.state = kSlotLive;
    hdr_->clients += 1;
    slot_ = s;
    return;
  }
  fail(Errc::TooManyClients, "store '" + name_ + "' has all " + std::to_string(max_clients_) +
                                 " client slots in use");
}

void Store::detach_client() noexcept {
  if (slot_ == kNoSlot) return;
  try {
    Locked lock(*this);
    release_slot_locked(slot_);
  } catch (...) {
    // A broken segment cannot be tidied; the kernel still drops our OFD lock at close.
  }
  slot_ = kNoSlot;
  publish_change();
}

void Store::release_slot_locked(uint32_t slot) {
  const uint64_t bit = uint64_t{1} << (slot % 64);
  for (uint32_t i = 0; i < max_objects_; ++i) {
    ObjectEntry& e = objects_[i];
    const auto state = static_cast<ObjectState>(e.state);
    if (state == ObjectState::Free) continue;
    e.holders[slot / 64] &= ~bit;
    if (state == ObjectState::Created && e.creator_slot == slot) {
      index_erase_locked(i);  // unsealed objects of a departed client are aborted
      hdr_->objects -= 1;
      hdr_->aborts += 1;
      free_entry_locked(i);
    } else if (state == ObjectState::Deleting && !has_holder(e)) {
      hdr_->deleting -= 1;
      free_entry_locked(i);
    }
  }
  ClientSlot& c = clients_[slot];
  std::memset(c.cursor_keys, 0, sizeof c.cursor_keys);
  c.state = kSlotFree;
  c.pid = 0;
  hdr_->clients -= 1;
}

void Store::reclaim_dead_clients_locked() {
  bool any = false;
  for (uint32_t s = 0; s < max_clients_; ++s) {
    if (s == slot_ || clients_[s].state != kSlotLive || slot_alive_locked(s)) continue;
    release_slot_locked(s);
    hdr_->reclaimed_clients += 1;
    any = true;
  }
  if (any) publish_change();
}

// Rebuilds everything derived from the object entries (the source of truth): the index, the
// free-entry stack, the free extents and the counters. Entries that cannot be right (out of
// bounds, overlapping, duplicate ids) are dropped. Runs after EOWNERDEAD and at create.
void Store::repair_locked() {
  hdr_->repairs += 1;
  struct Alloc {
    uint64_t offset, size;
    uint32_t entry;
  };
  std::vector<Alloc> allocs;
  for (uint32_t i = 0; i < max_objects_; ++i) {
    ObjectEntry& e = objects_[i];
    const uint32_t st = e.state;
    if (st == static_cast<uint32_t>(ObjectState::Free)) continue;
    const bool sane = st <= static_cast<uint32_t>(ObjectState::Deleting) && e.offset % kAlign == 0 &&
                      e.alloc_size >= kAlign && e.alloc_size % kAlign == 0 &&
                      e.offset < capacity_ && e.alloc_size <= capacity_ - e.offset &&
                      e.data_size <= e.alloc_size && e.metadata_size <= e.alloc_size - e.data_size &&
                      e.creator_slot < max_clients_;
    if (!sane) {
      e.state = static_cast<uint32_t>(ObjectState::Free);
      continue;
    }
    for (uint32_t w = 0; w < kMaxClientsLimit / 64; ++w) {  // no holders beyond max_clients
      const uint32_t lo = w * 64;
      e.holders[w] &= max_clients_ <= lo        ? 0
                      : max_clients_ >= lo + 64 ? ~uint64_t{0}
                                                : (uint64_t{1} << (max_clients_ - lo)) - 1;
    }
    allocs.push_back({e.offset, e.alloc_size, i});
  }
  std::sort(allocs.begin(), allocs.end(), [](const Alloc& a, const Alloc& b) { return a.offset < b.offset; });

  std::memset(index_, 0, (uint64_t{index_mask_} + 1) * sizeof(uint32_t));
  hdr_->objects = hdr_->sealed = hdr_->deleting = 0;
  hdr_->used_bytes = 0;
  uint32_t n_ext = 0;
  uint64_t cursor = 0;
  for (const Alloc& a : allocs) {
    ObjectEntry& e = objects_[a.entry];
    const auto st = static_cast<ObjectState>(e.state);
    ObjectId id;
    std::memcpy(id.data(), e.id, kIdSize);
    const bool overlaps = a.offset < cursor;
    const bool duplicate = st != ObjectState::Deleting && find_locked(id) >= 0;
    const bool orphan = st == ObjectState::Deleting && !has_holder(e);
    if (overlaps || duplicate || orphan) {
      e.state = static_cast<uint32_t>(ObjectState::Free);
      continue;
    }
    if (a.offset > cursor) extents_[n_ext++] = FreeExtent{cursor, a.offset - cursor};
    cursor = a.offset + a.size;
    hdr_->used_bytes += a.size;
    if (st == ObjectState::Deleting) {
      hdr_->deleting += 1;
    } else {
      index_insert_locked(a.entry);
      hdr_->objects += 1;
      if (st == ObjectState::Sealed) hdr_->sealed += 1;
    }
  }
  if (cursor < capacity_) extents_[n_ext++] = FreeExtent{cursor, capacity_ - cursor};
  hdr_->extent_count = n_ext;

  uint32_t n_free = 0;
  for (uint32_t i = max_objects_; i-- > 0;)
    if (objects_[i].state == static_cast<uint32_t>(ObjectState::Free)) entry_free_[n_free++] = i;
  hdr_->entry_free_count = n_free;

  uint32_t live = 0;
  for (uint32_t s = 0; s < max_clients_; ++s) {
    if (clients_[s].state != kSlotLive) clients_[s].state = kSlotFree;
    else live += 1;
  }
  hdr_->clients = live;
}

}  // namespace shmstore
