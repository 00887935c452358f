// Object operations: the Plasma calls (create, seal, abort, get, release, contains, delete,
// evict), listings, statistics, cursors, notifications and change waits.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "copy.h"
#include "errors.h"
#include "futex.h"
#include "lock.h"
#include "store.h"

namespace shmstore {

namespace {

uint64_t slot_bit(uint32_t slot) { return uint64_t{1} << (slot % 64); }

std::string hex(const ObjectId& id) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

ObjectState state_of(const ObjectEntry& e) { return static_cast<ObjectState>(e.state); }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ObjectView Store::view_of(uint32_t i) const {
  const ObjectEntry& e = entry_at(i);
  // Never trust shared memory: a corrupted entry must not yield a pointer past the mapping.
  if (e.offset > capacity_ || e.alloc_size > capacity_ - e.offset || e.data_size > e.alloc_size ||
      e.metadata_size > e.alloc_size - e.data_size)
    fail(Errc::BadSegment, "bad segment: object entry out of bounds");
  return ObjectView{i, e.generation, data_ + e.offset, e.data_size, data_ + e.offset + e.data_size,
                    e.metadata_size};
}

void Store::check_fits(uint64_t data_size, uint64_t metadata_size) const {
  // Allocations are whole 64-byte blocks: one larger than the capacity rounded down can never
  // fit, and must not be waited for (or evicted for).
  if (data_size > capacity_ || metadata_size > capacity_ - data_size ||
      round_up(std::max<uint64_t>(data_size + metadata_size, 1), kAlign) > capacity_ / kAlign * kAlign)
    fail(Errc::InvalidArgument, "object of " + std::to_string(data_size + metadata_size) +
                                    " bytes can never fit in a store of " +
                                    std::to_string(capacity_) + " bytes");
}

// Evictions put deleted events in the ring: their readers are woken after the lock, even when
// the create fails in the end.
struct Store::PublishIfEvicted {
  Store& s;
  bool evicted = false;
  ~PublishIfEvicted() {
    if (evicted) s.publish_change();
  }
};

std::optional<ObjectView> Store::create_locked(const ObjectId& id, uint64_t data_size,
                                               uint64_t metadata_size, PublishIfEvicted& eviction,
                                               bool if_room) {
  const uint64_t size = round_up(std::max<uint64_t>(data_size + metadata_size, 1), kAlign);
  if (find_locked(id) >= 0) fail(Errc::ObjectExists, "object " + hex(id) + " already exists");
  // entry_free_count lives in shared memory: never index with it unchecked.
  if (hdr_->entry_free_count > max_objects_)
    fail(Errc::BadSegment, "bad segment: free-entry count out of range");
  bool reclaimed = false;
  std::optional<uint64_t> offset;
  // Room: free space first, then space of dead clients, then (lru) the least recently used.
  for (;;) {
    if (hdr_->entry_free_count > 0 && (offset = alloc_locked(size))) break;
    if (!reclaimed) {
      reclaim_dead_clients_locked();
      reclaimed = true;
      continue;
    }
    if (eviction_ == Eviction::Lru && evict_one_locked()) {
      eviction.evicted = true;
      continue;
    }
    if (if_room) return std::nullopt;  // a lossless producer's routine answer: no message to build
    if (hdr_->entry_free_count == 0)
      fail(Errc::StoreFull, "store '" + name_ + "' holds its maximum of " +
                                std::to_string(max_objects_) + " objects");
    fail(Errc::StoreFull, "store '" + name_ + "' has no room for " + std::to_string(size) +
                              " bytes (" + std::to_string(hdr_->used_bytes) + " of " +
                              std::to_string(capacity_) + " used)");
  }
  const uint32_t i = entry_free_[--hdr_->entry_free_count];
  ObjectEntry& e = entry_at(i);
  if (state_of(e) != ObjectState::Free) fail(Errc::BadSegment, "bad segment: the free-entry stack names a live object");
  std::memcpy(e.id, id.data(), kIdSize);
  e.data_size = data_size;
  e.metadata_size = metadata_size;
  e.offset = *offset;
  e.alloc_size = size;
  e.lru_tick = ++hdr_->lru_clock;
  e.holders[0] = e.holders[1] = 0;
  e.creator_slot = slot_;
  e.generation += 1;
  // Last, and ordered after the fields above: repair after a crash trusts state.
  std::atomic_ref<uint32_t>(e.state).store(static_cast<uint32_t>(ObjectState::Created), std::memory_order_release);
  index_insert_locked(i);
  hdr_->objects += 1;
  hdr_->creates += 1;
  return view_of(i);
}

std::optional<ObjectView> Store::create_unsealed(const ObjectId& id, uint64_t data_size,
                                                std::span<const uint8_t> metadata, bool if_room) {
  check_fits(data_size, metadata.size());
  PublishIfEvicted eviction{*this};
  std::optional<ObjectView> view;
  {
    Locked lock(*this);
    view = create_locked(id, data_size, metadata.size(), eviction, if_room);
  }
  // Only the creator can reach an unsealed object: copy outside the lock.
  if (view && !metadata.empty()) std::memcpy(view->metadata, metadata.data(), metadata.size());
  return view;
}

ObjectView Store::create_object(const ObjectId& id, uint64_t data_size,
                                std::span<const uint8_t> metadata) {
  return create_unsealed(id, data_size, metadata, false).value();  // never empty: it throws
}

ObjectView Store::put_object(const ObjectId& id, std::span<const std::span<const uint8_t>> pieces,
                             std::span<const uint8_t> metadata, bool keep_reference) {
  return put_pieces(id, pieces, metadata, keep_reference, false).value();  // never empty: it throws
}

std::optional<ObjectView> Store::try_put_object(const ObjectId& id,
                                                std::span<const std::span<const uint8_t>> pieces,
                                                std::span<const uint8_t> metadata, bool keep_reference) {
  return put_pieces(id, pieces, metadata, keep_reference, true);
}

std::optional<ObjectView> Store::put_pieces(const ObjectId& id,
                                            std::span<const std::span<const uint8_t>> pieces,
                                            std::span<const uint8_t> metadata, bool keep_reference,
                                            bool if_room) {
  uint64_t data_size = 0;
  for (const auto& p : pieces) {
    if (p.size() > capacity_ - std::min(data_size, capacity_)) {
      data_size = capacity_ + 1;  // check_fits refuses it
      break;
    }
    data_size += p.size();
  }
  check_fits(data_size, metadata.size());
  if (data_size + metadata.size() > kCopyInLockMax) {
    const std::optional<ObjectView> view = create_unsealed(id, data_size, metadata, if_room);
    if (!view) return std::nullopt;
    uint8_t* at = view->data;
    for (const auto& p : pieces) {
      if (p.size() >= kStreamingCopyMin) copy_streaming(at, p.data(), p.size());
      else if (!p.empty()) std::memcpy(at, p.data(), p.size());
      at += p.size();
    }
    return seal(id, keep_reference);
  }
  PublishIfEvicted eviction{*this};
  std::optional<ObjectView> view;
  {
    Locked lock(*this);
    view = create_locked(id, data_size, metadata.size(), eviction, if_room);
    if (!view) return std::nullopt;
    // Small: copying under the lock costs less than taking it a second time to seal.
    uint8_t* at = view->data;
    for (const auto& p : pieces) {
      if (!p.empty()) std::memcpy(at, p.data(), p.size());
      at += p.size();
    }
    if (!metadata.empty()) std::memcpy(view->metadata, metadata.data(), metadata.size());
    seal_locked(view->entry, id, keep_reference);
  }
  publish_change();
  return view;
}

ObjectView Store::create_object_wait(const ObjectId& id, uint64_t data_size,
                                     std::span<const uint8_t> metadata, int64_t timeout_ns) {
  const int64_t give_up = futex::monotonic_ns() + (timeout_ns < 0 ? 0 : timeout_ns);
  const timespec deadline = futex::deadline_after_ns(timeout_ns < 0 ? 0 : timeout_ns);
  for (;;) {
    const uint32_t seen = change_seq();  // before trying, so a release in between wakes us
    try {
      return create_object(id, data_size, metadata);
    } catch (const Error& e) {
      if (e.code() != Errc::StoreFull || timeout_ns == 0) throw;
    }
    // A busy store changes all the time: the deadline, not a quiet futex, ends the wait.
    if ((timeout_ns > 0 && futex::monotonic_ns() >= give_up) ||
        !wait_change(seen, timeout_ns < 0 ? nullptr : &deadline))
      return create_object(id, data_size, metadata);  // a last try: throws StoreFull
  }
}

ObjectView Store::seal(const ObjectId& id, bool keep_reference) {
  ObjectView view;
  {
    Locked lock(*this);
    const int64_t i = find_locked(id);
    if (i < 0) fail(Errc::ObjectNotFound, "object " + hex(id) + " not found");
    ObjectEntry& e = objects_[i];
    if (state_of(e) == ObjectState::Sealed) fail(Errc::ObjectAlreadySealed, "object " + hex(id) + " is already sealed");
    if (e.creator_slot != slot_) fail(Errc::NotCreator, "object " + hex(id) + " was created by another client");
    view = view_of(static_cast<uint32_t>(i));
    seal_locked(static_cast<uint32_t>(i), id, keep_reference);
  }
  publish_change();
  return view;
}

void Store::seal_locked(uint32_t i, const ObjectId& id, bool keep_reference) {
  ObjectEntry& e = entry_at(i);
  e.state = static_cast<uint32_t>(ObjectState::Sealed);
  if (keep_reference) e.holders[slot_ / 64] |= slot_bit(slot_);
  e.lru_tick = ++hdr_->lru_clock;
  hdr_->sealed += 1;
  hdr_->seals += 1;
  emit_locked(EventType::Sealed, id);
}

void Store::abort(const ObjectId& id) {
  {
    Locked lock(*this);
    const int64_t i = find_locked(id);
    if (i < 0) fail(Errc::ObjectNotFound, "object " + hex(id) + " not found");
    ObjectEntry& e = objects_[i];
    if (state_of(e) == ObjectState::Sealed) fail(Errc::ObjectAlreadySealed, "object " + hex(id) + " is sealed: delete it instead");
    if (e.creator_slot != slot_) fail(Errc::NotCreator, "object " + hex(id) + " was created by another client");
    index_erase_locked(static_cast<uint32_t>(i));
    hdr_->objects -= 1;
    hdr_->aborts += 1;
    free_entry_locked(static_cast<uint32_t>(i));
  }
  publish_change();
}

std::optional<ObjectView> Store::get(const ObjectId& id) {
  Locked lock(*this);
  const int64_t i = find_locked(id);
  if (i < 0) return std::nullopt;
  ObjectEntry& e = objects_[i];
  if (state_of(e) != ObjectState::Sealed) return std::nullopt;
  ObjectView v = view_of(static_cast<uint32_t>(i));
  e.holders[slot_ / 64] |= slot_bit(slot_);
  e.lru_tick = ++hdr_->lru_clock;
  return v;
}

// Calls attempt() until it returns a value or timeout_ns (-1: forever) passes.
template <class Attempt>
auto Store::retry_until(int64_t timeout_ns, Attempt attempt) -> decltype(attempt()) {
  if (timeout_ns == 0) return attempt();  // a poll: no clock to read
  const int64_t give_up = futex::monotonic_ns() + (timeout_ns < 0 ? 0 : timeout_ns);
  const timespec deadline = futex::deadline_after_ns(timeout_ns < 0 ? 0 : timeout_ns);
  for (;;) {
    const uint32_t seen = change_seq();  // before trying, so a seal in between wakes us
    if (auto r = attempt()) return r;
    if (timeout_ns == 0 || (timeout_ns > 0 && futex::monotonic_ns() >= give_up)) return std::nullopt;
    if (!wait_change(seen, timeout_ns < 0 ? nullptr : &deadline)) return attempt();
  }
}

std::optional<ObjectView> Store::get_wait(const ObjectId& id, int64_t timeout_ns) {
  return retry_until(timeout_ns, [&] { return get(id); });
}

// The seqlock's reader side (writer: Store::Locked). Every locked section makes table_seq odd
// while it runs and leaves a new even value, so if the value is the same and even before and
// after, no locked section overlapped these reads and they saw the tables as the lock would
// have. Otherwise they may be torn (an entry half rewritten, an extent freed and reused while
// we copied), and nothing of them is trusted: not settled. Any bounds they fail are only a
// sign of that, never an error here. The copy starts only after the entry was seen whole, so a
// settled "does not fit" has copied nothing; a torn attempt may leave bytes in dest.
Store::UnlockedCopy Store::copy_out_unlocked(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata) const {
  std::atomic_ref<uint32_t> seq(hdr_->table_seq);
  const uint32_t before = seq.load(std::memory_order_acquire);
  if (before & 1) return {};
  const auto unchanged = [&] {
    std::atomic_thread_fence(std::memory_order_acquire);
    return seq.load(std::memory_order_relaxed) == before;
  };
  const int64_t i = find_locked(id);
  if (i < 0 || state_of(objects_[i]) != ObjectState::Sealed) return {unchanged(), std::nullopt};
  const ObjectEntry& e = objects_[i];
  const uint64_t offset = e.offset, alloc = e.alloc_size, data_size = e.data_size, meta_size = e.metadata_size;
  if (!unchanged()) return {};
  if (offset > capacity_ || alloc > capacity_ - offset || data_size > alloc || meta_size > alloc - data_size)
    return {};  // the locked path reports it
  CopyResult r{data_size, meta_size, false};
  const uint64_t size = data_size + (with_metadata ? meta_size : 0);
  if (size <= dest.size()) {
    std::memcpy(dest.data(), data_ + offset, size);
    r.copied = true;
  }
  if (!unchanged()) return {};
  return {true, r};
}

std::optional<CopyResult> Store::copy_out(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata) {
  if (dest.size() > kCopyInLockMax)
    fail(Errc::InvalidArgument, "copy_out copies under the lock: at most " + std::to_string(kCopyInLockMax) + " bytes");
  // Without the lock first, unless a read must refresh the object's LRU position (a write).
  if (eviction_ == Eviction::None) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      UnlockedCopy c = copy_out_unlocked(id, dest, with_metadata);
      if (c.settled) return c.result;
      cpu_relax();
    }
  }
  Locked lock(*this);
  const int64_t i = find_locked(id);
  if (i < 0 || state_of(objects_[i]) != ObjectState::Sealed) return std::nullopt;
  const ObjectView v = view_of(static_cast<uint32_t>(i));
  objects_[i].lru_tick = ++hdr_->lru_clock;
  CopyResult r{v.data_size, v.metadata_size, false};
  const uint64_t size = v.data_size + (with_metadata ? v.metadata_size : 0);
  if (size <= dest.size()) {
    std::memcpy(dest.data(), v.data, size);  // the metadata follows the data
    r.copied = true;
  }
  return r;
}

std::optional<CopyResult> Store::copy_out_wait(const ObjectId& id, std::span<uint8_t> dest, bool with_metadata,
                                               int64_t timeout_ns) {
  return retry_until(timeout_ns, [&] { return copy_out(id, dest, with_metadata); });
}

void Store::release(uint32_t entry, uint32_t generation) {
  bool unpinned = false;
  {
    if (entry >= max_objects_) fail(Errc::ObjectNotFound, "this client holds no reference to that object");
    Locked lock(*this);
    ObjectEntry& e = entry_at(entry);
    const uint64_t bit = slot_bit(slot_);
    if (state_of(e) == ObjectState::Free || e.generation != generation || (e.holders[slot_ / 64] & bit) == 0)
      fail(Errc::ObjectNotFound, "this client holds no reference to that object");
    e.holders[slot_ / 64] &= ~bit;
    unpinned = !has_holder(e);
    if (unpinned && state_of(e) == ObjectState::Deleting) {
      hdr_->deleting -= 1;
      free_entry_locked(entry);
    }
  }
  // Only an object that became free or evictable can unblock anyone.
  if (unpinned) publish_change();
}

bool Store::contains(const ObjectId& id) {
  Locked lock(*this);
  const int64_t i = find_locked(id);
  return i >= 0 && state_of(objects_[i]) == ObjectState::Sealed;
}

bool Store::remove(const ObjectId& id) {
  bool freed = false;
  {
    Locked lock(*this);
    const int64_t i = find_locked(id);
    if (i < 0) fail(Errc::ObjectNotFound, "object " + hex(id) + " not found");
    ObjectEntry& e = objects_[i];
    if (state_of(e) != ObjectState::Sealed) fail(Errc::ObjectNotSealed, "object " + hex(id) + " is not sealed: its creator may abort it");
    view_of(static_cast<uint32_t>(i));  // bounds check before anything changes
    index_erase_locked(static_cast<uint32_t>(i));
    hdr_->objects -= 1;
    hdr_->sealed -= 1;
    hdr_->deletes += 1;
    emit_locked(EventType::Deleted, id);
    if (has_holder(e)) {
      e.state = static_cast<uint32_t>(ObjectState::Deleting);  // freed by the last release
      hdr_->deleting += 1;
    } else {
      free_entry_locked(static_cast<uint32_t>(i));
      freed = true;
    }
  }
  publish_change();
  return freed;
}

bool Store::evict_one_locked() {
  int64_t victim = -1;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t i = 0; i < max_objects_; ++i) {
    const ObjectEntry& e = objects_[i];
    if (state_of(e) == ObjectState::Sealed && !has_holder(e) && e.lru_tick < oldest) {
      oldest = e.lru_tick;
      victim = i;
    }
  }
  if (victim < 0) return false;
  ObjectEntry& e = objects_[victim];
  ObjectId id;
  std::memcpy(id.data(), e.id, kIdSize);
  index_erase_locked(static_cast<uint32_t>(victim));
  hdr_->objects -= 1;
  hdr_->sealed -= 1;
  hdr_->evictions += 1;
  hdr_->evicted_bytes += e.alloc_size;
  emit_locked(EventType::Deleted, id);
  free_entry_locked(static_cast<uint32_t>(victim));
  return true;
}

uint64_t Store::evict(uint64_t bytes) {
  uint64_t freed = 0;
  {
    Locked lock(*this);
    while (freed < bytes) {
      const uint64_t before = hdr_->used_bytes;
      if (!evict_one_locked()) break;
      freed += before - hdr_->used_bytes;
    }
  }
  if (freed > 0) publish_change();
  return freed;
}

std::vector<ObjectInfo> Store::list() {
  Locked lock(*this);
  std::vector<ObjectInfo> out;
  for (uint32_t i = 0; i < max_objects_; ++i) {
    const ObjectEntry& e = objects_[i];
    if (state_of(e) == ObjectState::Free) continue;
    ObjectInfo info;
    std::memcpy(info.id.data(), e.id, kIdSize);
    info.state = state_of(e);
    info.data_size = e.data_size;
    info.metadata_size = e.metadata_size;
    info.holders = static_cast<uint32_t>(__builtin_popcountll(e.holders[0]) + __builtin_popcountll(e.holders[1]));
    info.creator_slot = e.creator_slot;
    out.push_back(info);
  }
  return out;
}

std::vector<ClientInfo> Store::clients() {
  Locked lock(*this);
  reclaim_dead_clients_locked();
  std::vector<ClientInfo> out;
  for (uint32_t s = 0; s < max_clients_; ++s)
    if (clients_[s].state == kSlotLive)
      out.push_back({s, clients_[s].pid, clients_[s].attached_unix_ms, s == slot_});
  return out;
}

StoreStats Store::stats() {
  Locked lock(*this);
  reclaim_dead_clients_locked();
  StoreStats st{};
  st.capacity = capacity_;
  st.waiters = std::atomic_ref<uint32_t>(hdr_->waiters).load(std::memory_order_relaxed);
  st.used_bytes = hdr_->used_bytes;
  const uint32_t n = std::min(hdr_->extent_count, max_objects_ + 1);
  for (uint32_t i = 0; i < n; ++i) st.largest_free = std::max(st.largest_free, extents_[i].size);
  st.free_extents = n;
  st.objects = hdr_->objects;
  st.sealed = hdr_->sealed;
  st.deleting = hdr_->deleting;
  st.clients = hdr_->clients;
  st.max_objects = max_objects_;
  st.max_clients = max_clients_;
  st.evictions = hdr_->evictions;
  st.evicted_bytes = hdr_->evicted_bytes;
  st.creates = hdr_->creates;
  st.seals = hdr_->seals;
  st.deletes = hdr_->deletes;
  st.aborts = hdr_->aborts;
  st.repairs = hdr_->repairs;
  st.reclaimed_clients = hdr_->reclaimed_clients;
  st.notify_head = hdr_->notify_head;
  st.eviction = eviction_;
  return st;
}

// Cursor cells: the owner stores values with release; readers load key then value with acquire,
// so a reader that sees a key also sees the value stored before it was published.
void Store::set_cursor(uint64_t key, uint64_t value, bool notify) {
  if (key == 0) fail(Errc::InvalidArgument, "cursor key 0 is reserved");
  ClientSlot& c = clients_[slot_];
  for (uint32_t k = 0; k < kCursorsPerClient; ++k) {
    if (std::atomic_ref<uint64_t>(c.cursor_keys[k]).load(std::memory_order_relaxed) == key) {
      std::atomic_ref<uint64_t>(c.cursor_values[k]).store(value, std::memory_order_release);
      if (notify) publish_change();
      return;
    }
  }
  {
    Locked lock(*this);
    uint32_t k = 0;
    while (k < kCursorsPerClient && c.cursor_keys[k] != 0) ++k;
    if (k == kCursorsPerClient)
      fail(Errc::InvalidArgument, "a client may keep at most " + std::to_string(kCursorsPerClient) + " cursors");
    std::atomic_ref<uint64_t>(c.cursor_values[k]).store(value, std::memory_order_release);
    std::atomic_ref<uint64_t>(c.cursor_keys[k]).store(key, std::memory_order_release);
  }
  publish_change();
}

void Store::clear_cursor(uint64_t key) {
  {
    Locked lock(*this);
    ClientSlot& c = clients_[slot_];
    for (uint32_t k = 0; k < kCursorsPerClient; ++k)
      if (c.cursor_keys[k] == key) std::atomic_ref<uint64_t>(c.cursor_keys[k]).store(0, std::memory_order_release);
  }
  publish_change();
}

std::vector<uint64_t> Store::cursor_values(uint64_t key) {
  std::vector<uint64_t> out;
  if (key == 0) return out;
  for (uint32_t s = 0; s < max_clients_; ++s) {
    ClientSlot& c = clients_[s];
    if (std::atomic_ref<uint32_t>(c.state).load(std::memory_order_acquire) != kSlotLive) continue;
    for (uint32_t k = 0; k < kCursorsPerClient; ++k)
      if (std::atomic_ref<uint64_t>(c.cursor_keys[k]).load(std::memory_order_acquire) == key)
        out.push_back(std::atomic_ref<uint64_t>(c.cursor_values[k]).load(std::memory_order_acquire));
  }
  return out;
}

void Store::emit_locked(EventType type, const ObjectId& id) {
  const uint64_t seq = hdr_->notify_head;
  NotifyEvent& ev = notify_[seq & (notify_capacity_ - 1)];
  ev.seq = seq;
  ev.type = static_cast<uint32_t>(type);
  std::memcpy(ev.id, id.data(), kIdSize);
  hdr_->notify_head = seq + 1;
}

uint64_t Store::notify_head() {
  Locked lock(*this);
  return hdr_->notify_head;
}

std::vector<Event> Store::read_events(uint64_t from, size_t max, uint64_t& missed) {
  Locked lock(*this);
  const uint64_t head = hdr_->notify_head;
  const uint64_t oldest = head > notify_capacity_ ? head - notify_capacity_ : 0;
  missed = from < oldest ? oldest - from : 0;
  from = std::clamp(from, oldest, head);
  std::vector<Event> out;
  for (uint64_t s = from; s < head && out.size() < max; ++s) {
    const NotifyEvent& ev = notify_[s & (notify_capacity_ - 1)];
    if (ev.seq != s || (ev.type != 1 && ev.type != 2)) fail(Errc::BadSegment, "bad segment: notification ring corrupted");
    Event e{s, static_cast<EventType>(ev.type), {}};
    std::memcpy(e.id.data(), ev.id, kIdSize);
    out.push_back(e);
  }
  return out;
}

// The futex protocol. Waiter: waiters++ then re-read change_seq; bumper: change_seq++ then read
// waiters. Both seq_cst, so at least one side sees the other: either the waiter sees the new
// value and does not sleep, or the bumper sees the waiter and wakes it.
void Store::publish_change() {
  std::atomic_ref<uint32_t>(hdr_->change_seq).fetch_add(1, std::memory_order_seq_cst);
  if (std::atomic_ref<uint32_t>(hdr_->waiters).load(std::memory_order_seq_cst) != 0)
    futex::wake(&hdr_->change_seq);
}

uint32_t Store::change_seq() const {
  return std::atomic_ref<uint32_t>(hdr_->change_seq).load(std::memory_order_seq_cst);
}

namespace {
// How long a waiter spins before it sleeps. A futex wake-up costs a context switch on each side
// (tens of µs on a busy VM); an answer that comes within this spin costs none. Short enough to
// waste little when nothing comes.
constexpr int64_t kSpinNs = 30'000;

// True once changed() is, false after kSpinNs of asking.
template <typename Changed>
bool spin_until(Changed changed) {
  const int64_t until = futex::monotonic_ns() + kSpinNs;
  for (int i = 0;; ++i) {
    if (changed()) return true;
    cpu_relax();
    if ((i & 63) == 63) {
      if (futex::monotonic_ns() > until) return false;
      // With more busy processes than cores, the one we wait for may be waiting for this
      // core: hand it over. With a core to spare this returns at once.
      sched_yield();
    }
  }
}

}  // namespace

bool Store::wait_change(uint32_t seen, const timespec* deadline) {
  if (spin_until([&] { return change_seq() != seen; })) return true;
  std::atomic_ref<uint32_t> waiters(hdr_->waiters);
  waiters.fetch_add(1, std::memory_order_seq_cst);
  bool woke = true;
  try {
    if (change_seq() == seen) woke = futex::wait(&hdr_->change_seq, seen, deadline);
  } catch (...) {
    waiters.fetch_sub(1, std::memory_order_seq_cst);
    throw;
  }
  waiters.fetch_sub(1, std::memory_order_seq_cst);
  return woke;
}

void Store::wait_any_change(std::span<const ChangeWatch> watches, uint32_t* local, uint32_t local_seen) {
  const std::atomic_ref<uint32_t> local_word(*local);
  const auto changed = [&] {
    if (local_word.load(std::memory_order_seq_cst) != local_seen) return true;
    for (const ChangeWatch& w : watches)
      if (w.store->change_seq() != w.seen) return true;
    return false;
  };
  if (spin_until(changed)) return;
  // Sleep on as many words as one futex_waitv takes; past that, wake every 1 ms to look at
  // the rest. Count ourselves in the waiters of the stores slept on (a sealer wakes the futex
  // only when someone sleeps there), then look once more: a change made before the count
  // would not wake us. seq_cst pairs with the sealer's bump-then-read of waiters.
  const std::span<const ChangeWatch> sleep_on = watches.first(std::min(watches.size(), futex::kMaxWatched));
  const int64_t timeout_ns = sleep_on.size() < watches.size() ? 1'000'000 : -1;
  std::array<futex::Watched, futex::kMaxWatched> words;
  for (size_t i = 0; i < sleep_on.size(); ++i) {
    words[i] = {&sleep_on[i].store->hdr_->change_seq, sleep_on[i].seen};
    std::atomic_ref<uint32_t>(sleep_on[i].store->hdr_->waiters).fetch_add(1, std::memory_order_seq_cst);
  }
  while (!changed())  // a signal, or a timeout: sleep again
    futex::wait_any(std::span(words.data(), sleep_on.size()), local, local_seen, timeout_ns);
  for (const ChangeWatch& w : sleep_on)
    std::atomic_ref<uint32_t>(w.store->hdr_->waiters).fetch_sub(1, std::memory_order_seq_cst);
}

void Store::park_in_lock_for_test(const std::function<void()>& on_parked) {
  const int rc = pthread_mutex_lock(&hdr_->mutex);
  if (rc != 0 && rc != EOWNERDEAD) fail_errno("pthread_mutex_lock", rc);
  std::atomic_ref<uint32_t> seq(hdr_->table_seq);  // as Locked does: a section in progress
  seq.store(seq.load(std::memory_order_relaxed) | 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  if (rc == EOWNERDEAD) {
    repair_locked();
    pthread_mutex_consistent(&hdr_->mutex);
  }
  // Half of a create: an entry claimed and marked, the extents, index and counters untouched.
  if (hdr_->entry_free_count > 0 && hdr_->extent_count > 0) {
    ObjectEntry& e = objects_[entry_free_[hdr_->entry_free_count - 1]];
    std::memset(e.id, 0xee, kIdSize);
    e.offset = extents_[0].offset;
    e.alloc_size = kAlign;
    e.data_size = 1;
    e.metadata_size = 0;
    e.creator_slot = slot_;
    e.generation += 1;
    e.state = static_cast<uint32_t>(ObjectState::Created);
  }
  on_parked();
  for (;;) ::pause();
}

}  // namespace shmstore
