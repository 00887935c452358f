// What one process knows about one open store: the core handle and every JS view it handed
// out, so that seal, release and close can detach them before the memory can be reused.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "store.h"

namespace shmstore::addon {

struct Session;

// One JS view (an external Buffer). Owned by its finalizer, which Node runs on the JS thread
// when the ArrayBuffer is collected or after it was detached.
struct ViewRecord {
  std::shared_ptr<Session> session;
  Napi::Reference<Napi::ArrayBuffer> buffer;  // weak: lets us detach without keeping it alive
  uint64_t key = 0;                           // held_key(); 0 once orphaned by release/close
  bool writable = false;
  ObjectId id{};
  // Its ArrayBuffer was detached by someone else (ArrayBuffer.prototype.transfer): the memory
  // may still be reachable from the new buffer, so the object stays held (and the mapping
  // mapped) until this record's finalizer says the last buffer over it is gone.
  bool escaped = false;
};

struct Held {
  ObjectId id{};
  std::vector<ViewRecord*> views;
  bool pinned = false;  // sealed with keepReference: only an explicit release drops it
};

struct IdHash {
  size_t operator()(const ObjectId& id) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, id.data(), 8);
    std::memcpy(&b, id.data() + 12, 8);
    return static_cast<size_t>(a * 0x9e3779b97f4a7c15ULL ^ b);
  }
};

// Sealed objects this client holds, by held key, with an index by id: a lossless publisher
// holds every message in flight (thousands) and releases them by id, which must not scan.
// One id can have several keys (deleted and created again while the old one is held).
class HeldTable {
 public:
  Held* find(uint64_t key) {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &it->second;
  }
  bool contains(uint64_t key) const { return by_key_.count(key) != 0; }
  // The entry for key, added (holding id, no views, not pinned) if it is not there.
  Held& add(uint64_t key, const ObjectId& id) {
    auto [it, added] = by_key_.try_emplace(key);
    if (added) {
      it->second.id = id;
      by_id_.emplace(id, key);
    }
    return it->second;
  }
  void erase(uint64_t key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return;
    auto [first, last] = by_id_.equal_range(it->second.id);
    for (auto i = first; i != last; ++i)
      if (i->second == key) {
        by_id_.erase(i);
        break;
      }
    by_key_.erase(it);
  }
  std::vector<uint64_t> keys_of(const ObjectId& id) const {
    std::vector<uint64_t> keys;
    auto [first, last] = by_id_.equal_range(id);
    for (auto i = first; i != last; ++i) keys.push_back(i->second);
    return keys;
  }
  template <class F>
  void for_each(F&& f) {
    for (auto& [key, held] : by_key_) f(key, held);
  }
  void clear() {
    by_key_.clear();
    by_id_.clear();
  }

 private:
  std::unordered_map<uint64_t, Held> by_key_;
  std::unordered_multimap<ObjectId, uint64_t, IdHash> by_id_;
};

struct Session {
  std::unique_ptr<Store> store;                         // null once closed and unmapped
  std::vector<ViewRecord*> escaped;                     // see ViewRecord::escaped
  bool closed = false;  // close() ran; the store goes with the last escaped view
  HeldTable held;                                       // sealed objects this client holds
  std::unordered_map<ObjectId, ViewRecord*, IdHash> creating;  // writable views of unsealed ones

  static uint64_t held_key(uint32_t entry, uint32_t generation) {
    return (uint64_t{entry} << 32 | generation) + 1;  // never 0
  }
};

// Detaches the record's ArrayBuffer and orphans the record; or, if the buffer escaped (see
// ViewRecord::escaped), marks it and files it in session.escaped. Returns true if it escaped.
bool detach_view(ViewRecord* r);

// An external Buffer over [data, data + size), tracked by a new ViewRecord.
Napi::Buffer<uint8_t> make_view(Napi::Env env, const std::shared_ptr<Session>& session,
                                uint8_t* data, size_t size, uint64_t key, bool writable,
                                const ObjectId& id, ViewRecord** out_record);

// Detaches every view of a held object and drops this client's reference in the store, unless
// a view escaped: then its finalizer drops the reference.
void release_held(Session& s, uint64_t key);

}  // namespace shmstore::addon
