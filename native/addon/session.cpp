#include "session.h"

#include <algorithm>

namespace shmstore::addon {

namespace {

void release_quietly(Store& store, uint64_t key) {
  try {
    store.release(static_cast<uint32_t>((key - 1) >> 32), static_cast<uint32_t>(key - 1));
  } catch (const std::exception&) {
    // Nothing to report to from a finalizer; the store reclaims at close or exit.
  }
}

void on_escaped_collected(Session& s, ViewRecord* r) {
  s.escaped.erase(std::remove(s.escaped.begin(), s.escaped.end(), r), s.escaped.end());
  if (s.store) {
    // The last buffer over this object is gone: drop the hold it kept, unless this process
    // holds the object again, or another escaped buffer still covers it.
    const bool still_held = s.held.contains(r->key) ||
                            std::any_of(s.escaped.begin(), s.escaped.end(), [&](ViewRecord* o) { return o->key == r->key; });
    if (!still_held) release_quietly(*s.store, r->key);
    if (s.closed && s.escaped.empty()) s.store.reset();  // the deferred part of close()
  }
}

void on_view_collected(Napi::Env /*env*/, uint8_t* /*data*/, ViewRecord* r) {
  Session& s = *r->session;
  if (r->escaped) {
    on_escaped_collected(s, r);
  } else if (r->key != 0 && s.store) {
    if (r->writable) {
      auto it = s.creating.find(r->id);
      if (it != s.creating.end() && it->second == r) s.creating.erase(it);
    } else if (Held* held = s.held.find(r->key)) {
      auto& v = held->views;
      v.erase(std::remove(v.begin(), v.end(), r), v.end());
      if (v.empty() && !held->pinned) {
        // The last view of the object is gone without release(): release on its behalf.
        const uint64_t key = r->key;
        s.held.erase(key);
        release_quietly(*s.store, key);
      }
    }
  }
  delete r;
}

}  // namespace

bool detach_view(ViewRecord* r) {
  if (r->key == 0 || r->escaped) return r->escaped;
  Napi::ArrayBuffer ab = r->buffer.IsEmpty() ? Napi::ArrayBuffer() : r->buffer.Value();
  if (!ab.IsEmpty() && ab.IsDetached()) {
    // Detached, and not by us: transferred. The memory lives on in the new buffer.
    r->escaped = true;
    r->session->escaped.push_back(r);
    return true;
  }
  // Collected (its finalizer is on its way), or alive: detach it. A buffer that was first
  // transferred and then collected looks like the first case; see docs/INTERNALS.md.
  if (!ab.IsEmpty()) ab.Detach();
  r->key = 0;
  return false;
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
  Held* held = s.held.find(key);
  if (held == nullptr) return;
  bool escaped = std::any_of(s.escaped.begin(), s.escaped.end(), [&](ViewRecord* r) { return r->key == key; });
  for (ViewRecord* r : held->views) escaped |= detach_view(r);
  s.held.erase(key);
  if (!escaped && s.store) s.store->release(static_cast<uint32_t>((key - 1) >> 32), static_cast<uint32_t>(key - 1));
}

}  // namespace shmstore::addon
