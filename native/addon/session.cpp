#include "session.h"

#include <algorithm>

namespace shmstore::addon {

namespace {

void on_view_collected(Napi::Env /*env*/, uint8_t* /*data*/, ViewRecord* r) {
  Session& s = *r->session;
  if (r->key != 0 && s.store) {
    if (r->writable) {
      auto it = s.creating.find(r->id);
      if (it != s.creating.end() && it->second == r) s.creating.erase(it);
    } else if (auto it = s.held.find(r->key); it != s.held.end()) {
      auto& v = it->second.views;
      v.erase(std::remove(v.begin(), v.end(), r), v.end());
      if (v.empty() && !it->second.pinned) {
        // The last view of the object is gone without release(): release on its behalf.
        const uint32_t entry = static_cast<uint32_t>((r->key - 1) >> 32);
        const uint32_t generation = static_cast<uint32_t>(r->key - 1);
        s.held.erase(it);
        try {
          s.store->release(entry, generation);
        } catch (const std::exception&) {
          // Nothing to report to from a finalizer; the store reclaims at close or exit.
        }
      }
    }
  }
  delete r;
}

}  // namespace

void detach_view(ViewRecord* r) {
  if (r->key == 0) return;
  r->key = 0;
  if (r->buffer.IsEmpty()) return;
  Napi::ArrayBuffer ab = r->buffer.Value();
  if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
}

Napi::Buffer<uint8_t> make_view(Napi::Env env, const std::shared_ptr<Session>& session,
                                uint8_t* data, size_t size, uint64_t key, bool writable,
                                const ObjectId& id, ViewRecord** out_record) {
  auto* r = new ViewRecord{session, {}, key, writable, id};
  // Length 0 still gets an external buffer: its finalizer is what releases the hold.
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, data, size, on_view_collected, r);
  if (env.IsExceptionPending()) {
    delete r;
    return buf;
  }
  r->buffer = Napi::Weak(buf.ArrayBuffer());
  *out_record = r;
  return buf;
}

void release_held(Session& s, uint64_t key) {
  auto it = s.held.find(key);
  if (it == s.held.end()) return;
  for (ViewRecord* r : it->second.views) detach_view(r);
  s.held.erase(it);
  if (s.store) {
    s.store->release(static_cast<uint32_t>((key - 1) >> 32), static_cast<uint32_t>(key - 1));
  }
}

}  // namespace shmstore::addon
