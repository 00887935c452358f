#include "store_wrap.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "js_errors.h"

namespace shmstore::addon {

namespace {

// Arguments that src/store.ts has already validated; a direct caller gets a StoreError.
bool read_id(const Napi::Value& v, ObjectId& id) {
  if (!v.IsTypedArray()) return false;
  auto arr = v.As<Napi::TypedArray>();
  if (arr.TypedArrayType() != napi_uint8_array || arr.ByteLength() != kIdSize) return false;
  auto u8 = v.As<Napi::Uint8Array>();
  std::memcpy(id.data(), u8.Data(), kIdSize);
  return true;
}

bool read_count(const Napi::Value& v, uint64_t& out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) return false;
  out = static_cast<uint64_t>(d);
  return true;
}

// Milliseconds (-1 forever, 0 poll) to nanoseconds for the core.
bool read_timeout_ns(const Napi::Value& v, int64_t& ns) {
  if (v.IsUndefined()) { ns = 0; return true; }
  if (!v.IsNumber()) return false;
  const double ms = v.As<Napi::Number>().DoubleValue();
  if (ms == -1) { ns = -1; return true; }
  if (!(ms >= 0) || ms > 1e12) return false;
  ns = static_cast<int64_t>(ms * 1e6);
  return true;
}

// Stream cursors are named by strings; the segment keeps a 64-bit FNV-1a of the name.
uint64_t cursor_key(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h == 0 ? 1 : h;
}

const char* state_name(ObjectState s) {
  switch (s) {
    case ObjectState::Created: return "created";
    case ObjectState::Sealed: return "sealed";
    case ObjectState::Deleting: return "deleting";
    default: return "free";
  }
}

Napi::Buffer<uint8_t> id_buffer(Napi::Env env, const ObjectId& id) {
  return Napi::Buffer<uint8_t>::Copy(env, id.data(), id.size());
}

}  // namespace

Napi::Function StoreWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeStore",
                     {
                         InstanceMethod<&StoreWrap::JS_close>("close"),
                         InstanceMethod<&StoreWrap::JS_create>("create"),
                         InstanceMethod<&StoreWrap::JS_seal>("seal"),
                         InstanceMethod<&StoreWrap::JS_abort>("abort"),
                         InstanceMethod<&StoreWrap::JS_get>("get"),
                         InstanceMethod<&StoreWrap::JS_put>("put"),
                         InstanceMethod<&StoreWrap::JS_read>("read"),
                         InstanceMethod<&StoreWrap::JS_release>("release"),
                         InstanceMethod<&StoreWrap::JS_releaseId>("releaseId"),
                         InstanceMethod<&StoreWrap::JS_contains>("contains"),
                         InstanceMethod<&StoreWrap::JS_delete>("delete"),
                         InstanceMethod<&StoreWrap::JS_evict>("evict"),
                         InstanceMethod<&StoreWrap::JS_list>("list"),
                         InstanceMethod<&StoreWrap::JS_clients>("clients"),
                         InstanceMethod<&StoreWrap::JS_stats>("stats"),
                         InstanceMethod<&StoreWrap::JS_setCursor>("setCursor"),
                         InstanceMethod<&StoreWrap::JS_clearCursor>("clearCursor"),
                         InstanceMethod<&StoreWrap::JS_cursorValues>("cursorValues"),
                         InstanceMethod<&StoreWrap::JS_notifyHead>("notifyHead"),
                         InstanceMethod<&StoreWrap::JS_readEvents>("readEvents"),
                         InstanceMethod<&StoreWrap::JS_changeSeq>("changeSeq"),
                         InstanceMethod<&StoreWrap::JS_prefault>("prefault"),
                         InstanceMethod<&StoreWrap::JS_watch>("watch"),
                         InstanceMethod<&StoreWrap::JS_unwatch>("unwatch"),
                         InstanceMethod<&StoreWrap::JS_startWaiting>("startWaiting"),
                         InstanceMethod<&StoreWrap::JS_parkInLockForTest>("parkInLockForTest"),
                     });
}

StoreWrap::StoreWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StoreWrap>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString()) {
      throw_invalid(env, "NativeStore(kind, name, ...)");
      return env.Undefined();
    }
    const std::string kind = info[0].As<Napi::String>();
    const std::string name = info[1].As<Napi::String>();
    Napi::Value out = info[info.Length() - 1];
    if (!out.IsTypedArray() || out.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        out.As<Napi::TypedArray>().ElementLength() < 4) {
      throw_invalid(env, "NativeStore: last argument must be a Float64Array(4)");
      return env.Undefined();
    }
    if (kind == "create") {
      uint64_t capacity, max_objects, max_clients, eviction, mode, notify;
      if (info.Length() != 9 || !read_count(info[2], capacity) || !read_count(info[3], max_objects) ||
          !read_count(info[4], max_clients) || !read_count(info[5], eviction) ||
          !read_count(info[6], mode) || !read_count(info[7], notify) || eviction > 1 ||
          max_objects > 0xffffffffULL || max_clients > 0xffffffffULL || notify > 0xffffffffULL) {
        throw_invalid(env, "NativeStore('create'): bad options");
        return env.Undefined();
      }
      StoreOptions o;
      o.capacity = capacity;
      o.max_objects = static_cast<uint32_t>(max_objects);
      o.max_clients = static_cast<uint32_t>(max_clients);
      o.eviction = eviction == 1 ? Eviction::Lru : Eviction::None;
      o.mode = static_cast<uint32_t>(mode);
      o.notify_capacity = static_cast<uint32_t>(notify);
      session_->store = Store::create(name, o);
    } else if (kind == "open") {
      session_->store = Store::open(name);
    } else {
      throw_invalid(env, "NativeStore: kind must be 'create' or 'open'");
      return env.Undefined();
    }
    out_ref_ = Napi::Persistent(out.As<Napi::Float64Array>());
    out_ = out_ref_.Value().Data();
    return env.Undefined();
  });
}

// Collected without close(), or the environment is going away. Views handed out may outlive
// this object: they share the session, whose store (and mapping) goes with the last of them.
// A waiter only exists here at teardown (its thread-safe function keeps this object alive).
StoreWrap::~StoreWrap() {
  if (waiter_) waiter_->abandon();
}

Store& StoreWrap::store(Napi::Env /*env*/) {
  if (session_->closed || !session_->store) fail(Errc::StoreClosed, "the store is closed");
  return *session_->store;
}

void StoreWrap::close_now() {
  if (session_->closed || !session_->store) return;
  if (waiter_) waiter_->stop();
  waiter_.reset();
  // Detach every view before the mapping goes: no JS code may touch unmapped memory.
  session_->held.for_each([](uint64_t, Held& held) {
    for (ViewRecord* r : held.views) detach_view(r);
  });
  session_->held.clear();
  for (auto& [id, r] : session_->creating) detach_view(r);
  session_->creating.clear();
  session_->closed = true;
  // Releases references, aborts unsealed objects, frees the slot and unmaps; if a view
  // escaped, the last escaped view's finalizer does it instead.
  if (session_->escaped.empty()) session_->store.reset();
}

Napi::Value StoreWrap::JS_close(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    close_now();
    return info.Env().Undefined();
  });
}

// create(id, size, metadata: Uint8Array | null, timeoutMs) -> writable Buffer
Napi::Value StoreWrap::JS_create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    uint64_t size;
    int64_t timeout_ns;
    if (!read_id(info[0], id) || !read_count(info[1], size) || !read_timeout_ns(info[3], timeout_ns) ||
        !(info[2].IsNull() || info[2].IsUndefined() || info[2].IsTypedArray())) {
      throw_invalid(env, "create(id, size, metadata, timeoutMs): bad arguments");
      return env.Undefined();
    }
    std::span<const uint8_t> meta;
    if (info[2].IsTypedArray()) {
      auto arr = info[2].As<Napi::TypedArray>();
      auto ab = arr.ArrayBuffer();
      meta = {static_cast<const uint8_t*>(ab.Data()) + arr.ByteOffset(), arr.ByteLength()};
    }
    Store& s = store(env);
    ObjectView v = s.create_object_wait(id, size, meta, timeout_ns);
    ViewRecord* r = nullptr;
    Napi::Buffer<uint8_t> buf = make_view(env, session_, v.data, v.data_size,
                                          Session::held_key(v.entry, v.generation), true, id, &r);
    if (r == nullptr) {
      s.abort(id);
      return env.Undefined();
    }
    session_->creating[id] = r;
    return buf;
  });
}

// seal(id, keepReference): with keepReference this client goes on holding the sealed object
// (it cannot be evicted) until release(id); the token lands in out[2..3].
Napi::Value StoreWrap::JS_seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    if (!read_id(info[0], id)) { throw_invalid(env, "seal(id): id must be 20 bytes"); return env.Undefined(); }
    const bool keep = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    Store& s = store(env);
    // Sealed means immutable: the creator's writable view goes. One that escaped keeps the
    // object held (sealed with a reference) until its finalizer runs.
    bool escaped = false;
    if (auto it = session_->creating.find(id); it != session_->creating.end()) {
      escaped = detach_view(it->second);
      session_->creating.erase(it);
    }
    const ObjectView v = s.seal(id, keep || escaped);
    if (keep) {
      session_->held.add(Session::held_key(v.entry, v.generation), id).pinned = true;  // a hold, no view yet
      out_[2] = v.entry;
      out_[3] = v.generation;
    }
    return env.Undefined();
  });
}

Napi::Value StoreWrap::JS_abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    if (!read_id(info[0], id)) { throw_invalid(env, "abort(id): id must be 20 bytes"); return env.Undefined(); }
    Store& s = store(env);
    if (auto it = session_->creating.find(id); it != session_->creating.end()) {
      if (detach_view(it->second)) {
        session_->creating.erase(it);
        // Freeing it would hand memory that the escaped buffer still reaches to the next object.
        fail(Errc::ObjectInUse, "the writable view of this object was transferred (ArrayBuffer.prototype.transfer): "
                                "it cannot be aborted; it is dropped when this store closes");
      }
      session_->creating.erase(it);
    }
    s.abort(id);
    return env.Undefined();
  });
}

// get(id, timeoutMs) -> Buffer over data then metadata, or null. out[] gets the sizes and the
// (entry, generation) token that release() takes.
Napi::Value StoreWrap::JS_get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    int64_t timeout_ns;
    if (!read_id(info[0], id) || !read_timeout_ns(info[1], timeout_ns)) {
      throw_invalid(env, "get(id, timeoutMs): bad arguments");
      return env.Undefined();
    }
    Store& s = store(env);
    auto v = s.get_wait(id, timeout_ns);
    if (!v) return env.Null();
    const uint64_t key = Session::held_key(v->entry, v->generation);
    ViewRecord* r = nullptr;
    Napi::Buffer<uint8_t> buf = make_view(env, session_, v->data, v->data_size + v->metadata_size,
                                          key, false, id, &r);
    Held& held = session_->held.add(key, id);
    if (r == nullptr) {
      if (held.views.empty() && !held.pinned) {
        session_->held.erase(key);
        s.release(v->entry, v->generation);
      }
      return env.Undefined();
    }
    held.views.push_back(r);
    out_[0] = static_cast<double>(v->data_size);
    out_[1] = static_cast<double>(v->metadata_size);
    out_[2] = v->entry;
    out_[3] = v->generation;
    return buf;
  });
}

// put(id, data: Uint8Array | Uint8Array[], metadata: Uint8Array | null, keepReference, ifRoom)
// -> stored: create, copy (an array's pieces one after another), seal in one call, with no
// writable view to make and detach (what makes small objects cheap). ifRoom: false when the
// store is full instead of ERR_STORE_FULL.
Napi::Value StoreWrap::JS_put(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto bytes_of = [](const Napi::Value& v) {
      auto arr = v.As<Napi::TypedArray>();
      return std::span<const uint8_t>(static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset(), arr.ByteLength());
    };
    ObjectId id;
    std::span<const uint8_t> one;  // data given as one Uint8Array: no vector to allocate
    std::vector<std::span<const uint8_t>> pieces;
    bool ok = read_id(info[0], id) && (info[2].IsNull() || info[2].IsUndefined() || info[2].IsTypedArray());
    if (ok && info[1].IsTypedArray()) {
      one = bytes_of(info[1]);
    } else if (ok && info[1].IsArray()) {
      const auto list = info[1].As<Napi::Array>();
      for (uint32_t i = 0; ok && i < list.Length(); ++i) {
        const Napi::Value piece = list.Get(i);
        ok = piece.IsTypedArray();
        if (ok) pieces.push_back(bytes_of(piece));
      }
    } else {
      ok = false;
    }
    if (!ok) {
      throw_invalid(env, "put(id, data, metadata): bad arguments");
      return env.Undefined();
    }
    const std::span<const uint8_t> meta = info[2].IsTypedArray() ? bytes_of(info[2]) : std::span<const uint8_t>{};
    const bool keep = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    const bool if_room = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
    Store& s = store(env);
    const std::span<const std::span<const uint8_t>> data = info[1].IsTypedArray() ? std::span(&one, 1) : std::span(pieces);
    const std::optional<ObjectView> v = if_room ? s.try_put_object(id, data, meta, keep) : s.put_object(id, data, meta, keep);
    if (v && keep) session_->held.add(Session::held_key(v->entry, v->generation), id).pinned = true;
    return Napi::Boolean::New(env, v.has_value());
  });
}

// read(id, timeoutMs, target, withMetadata) -> the data size, or null; out[0..1] get the data
// and metadata sizes. The data (followed by the metadata, withMetadata) is copied into target
// when it fits; otherwise nothing is copied. Holds the object only while copying: for small
// objects, where a shared view costs more than the bytes.
Napi::Value StoreWrap::JS_read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    int64_t timeout_ns;
    if (!read_id(info[0], id) || !read_timeout_ns(info[1], timeout_ns) || !info[2].IsTypedArray()) {
      throw_invalid(env, "read(id, timeoutMs, target): bad arguments");
      return env.Undefined();
    }
    auto target = info[2].As<Napi::TypedArray>();
    uint8_t* dest = static_cast<uint8_t*>(target.ArrayBuffer().Data()) + target.ByteOffset();
    Store& s = store(env);
    const bool with_metadata = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    if (target.ByteLength() <= Store::kCopyInLockMax) {
      // Small: one trip through the lock, no reference to take and drop.
      auto r = s.copy_out_wait(id, {dest, target.ByteLength()}, with_metadata, timeout_ns);
      if (!r) return env.Null();
      out_[0] = static_cast<double>(r->data_size);
      out_[1] = static_cast<double>(r->metadata_size);
      return Napi::Number::New(env, static_cast<double>(r->data_size));
    }
    auto v = s.get_wait(id, timeout_ns);
    if (!v) return env.Null();
    const uint64_t size = v->data_size + (with_metadata ? v->metadata_size : 0);
    if (size <= target.ByteLength()) std::memcpy(dest, v->data, size);  // metadata follows data
    out_[0] = static_cast<double>(v->data_size);
    out_[1] = static_cast<double>(v->metadata_size);
    // A view this process already holds keeps its reference; otherwise drop ours now.
    if (!session_->held.contains(Session::held_key(v->entry, v->generation))) s.release(v->entry, v->generation);
    return Napi::Number::New(env, static_cast<double>(v->data_size));
  });
}

// release(entry, generation): drop the reference get() returned; detaches all its views.
Napi::Value StoreWrap::JS_release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    uint64_t entry, generation;
    if (!read_count(info[0], entry) || !read_count(info[1], generation) || entry > 0xffffffffULL ||
        generation > 0xffffffffULL) {
      throw_invalid(env, "release(entry, generation): bad token");
      return env.Undefined();
    }
    store(env);
    const uint64_t key = Session::held_key(static_cast<uint32_t>(entry), static_cast<uint32_t>(generation));
    Held* held = session_->held.find(key);
    if (held == nullptr) return Napi::Boolean::New(env, false);
    if (held->pinned) {
      // A keepReference seal in this process holds it too: only release(id) drops that.
      for (ViewRecord* r : held->views) detach_view(r);
      held->views.clear();
    } else {
      release_held(*session_, key);
    }
    return Napi::Boolean::New(env, true);
  });
}

// releaseId(id): drop every reference this client holds on id.
Napi::Value StoreWrap::JS_releaseId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    if (!read_id(info[0], id)) { throw_invalid(env, "release(id): id must be 20 bytes"); return env.Undefined(); }
    store(env);
    const std::vector<uint64_t> keys = session_->held.keys_of(id);
    if (keys.empty()) fail(Errc::ObjectNotFound, "this client holds no reference to that object");
    for (uint64_t key : keys) release_held(*session_, key);
    return env.Undefined();
  });
}

Napi::Value StoreWrap::JS_contains(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    if (!read_id(info[0], id)) { throw_invalid(env, "contains(id): id must be 20 bytes"); return env.Undefined(); }
    return Napi::Boolean::New(env, store(env).contains(id));
  });
}

Napi::Value StoreWrap::JS_delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ObjectId id;
    if (!read_id(info[0], id)) { throw_invalid(env, "delete(id): id must be 20 bytes"); return env.Undefined(); }
    return Napi::Boolean::New(env, store(env).remove(id));
  });
}

Napi::Value StoreWrap::JS_evict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    uint64_t bytes;
    if (!read_count(info[0], bytes)) { throw_invalid(env, "evict(bytes): bytes must be a non-negative integer"); return env.Undefined(); }
    return Napi::Number::New(env, static_cast<double>(store(env).evict(bytes)));
  });
}

Napi::Value StoreWrap::JS_list(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const auto infos = store(env).list();
    Napi::Array arr = Napi::Array::New(env, infos.size());
    for (size_t i = 0; i < infos.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", id_buffer(env, infos[i].id));
      o.Set("size", static_cast<double>(infos[i].data_size));
      o.Set("metadataSize", static_cast<double>(infos[i].metadata_size));
      o.Set("state", state_name(infos[i].state));
      o.Set("holders", infos[i].holders);
      o.Set("creator", infos[i].creator_slot);
      arr.Set(static_cast<uint32_t>(i), o);
    }
    return arr;
  });
}

Napi::Value StoreWrap::JS_clients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const auto list = store(env).clients();
    Napi::Array arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("slot", list[i].slot);
      o.Set("pid", list[i].pid);
      o.Set("attachedAt", static_cast<double>(list[i].attached_unix_ms));
      o.Set("self", list[i].self);
      arr.Set(static_cast<uint32_t>(i), o);
    }
    return arr;
  });
}

Napi::Value StoreWrap::JS_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const StoreStats st = store(env).stats();
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    num("capacity", static_cast<double>(st.capacity));
    num("usedBytes", static_cast<double>(st.used_bytes));
    num("largestFree", static_cast<double>(st.largest_free));
    num("freeExtents", st.free_extents);
    num("objects", st.objects);
    num("sealed", st.sealed);
    num("deleting", st.deleting);
    num("clients", st.clients);
    num("maxObjects", st.max_objects);
    num("maxClients", st.max_clients);
    num("evictions", static_cast<double>(st.evictions));
    num("evictedBytes", static_cast<double>(st.evicted_bytes));
    num("creates", static_cast<double>(st.creates));
    num("seals", static_cast<double>(st.seals));
    num("deletes", static_cast<double>(st.deletes));
    num("aborts", static_cast<double>(st.aborts));
    num("repairs", static_cast<double>(st.repairs));
    num("reclaimedClients", static_cast<double>(st.reclaimed_clients));
    num("notifications", static_cast<double>(st.notify_head));
    o.Set("eviction", st.eviction == Eviction::Lru ? "lru" : "none");
    return o;
  });
}

Napi::Value StoreWrap::JS_setCursor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    uint64_t value;
    if (!info[0].IsString() || !read_count(info[1], value)) { throw_invalid(env, "setCursor(name, value): bad arguments"); return env.Undefined(); }
    const bool notify = !info[2].IsBoolean() || info[2].As<Napi::Boolean>().Value();
    store(env).set_cursor(cursor_key(info[0].As<Napi::String>()), value, notify);
    return env.Undefined();
  });
}

Napi::Value StoreWrap::JS_clearCursor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) { throw_invalid(env, "clearCursor(name): name must be a string"); return env.Undefined(); }
    store(env).clear_cursor(cursor_key(info[0].As<Napi::String>()));
    return env.Undefined();
  });
}

Napi::Value StoreWrap::JS_cursorValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) { throw_invalid(env, "cursorValues(name): name must be a string"); return env.Undefined(); }
    const auto values = store(env).cursor_values(cursor_key(info[0].As<Napi::String>()));
    Napi::Array arr = Napi::Array::New(env, values.size());
    for (size_t i = 0; i < values.size(); ++i) arr.Set(static_cast<uint32_t>(i), static_cast<double>(values[i]));
    return arr;
  });
}

Napi::Value StoreWrap::JS_notifyHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(store(env).notify_head()));
  });
}

// readEvents(from, max) -> { events: [{ seq, type, id }], missed }
Napi::Value StoreWrap::JS_readEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    uint64_t from, max;
    if (!read_count(info[0], from) || !read_count(info[1], max)) { throw_invalid(env, "readEvents(from, max): bad arguments"); return env.Undefined(); }
    uint64_t missed = 0;
    const auto events = store(env).read_events(from, max, missed);
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("seq", static_cast<double>(events[i].seq));
      o.Set("type", events[i].type == EventType::Sealed ? "sealed" : "deleted");
      o.Set("id", id_buffer(env, events[i].id));
      arr.Set(static_cast<uint32_t>(i), o);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("events", arr);
    result.Set("missed", static_cast<double>(missed));
    return result;
  });
}

Napi::Value StoreWrap::JS_changeSeq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return Napi::Number::New(env, store(env).change_seq()); });
}

Napi::Value StoreWrap::JS_prefault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    store(env).prefault();
    return env.Undefined();
  });
}

// watch(onChange): registers this handle with the process's waiter thread; onChange(seq) runs
// on the JS thread.
Napi::Value StoreWrap::JS_watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsFunction()) { throw_invalid(env, "watch(onChange): a function is required"); return env.Undefined(); }
    Store& s = store(env);
    if (!waiter_) waiter_ = std::make_unique<Waiter>(env, s, info[0].As<Napi::Function>());
    return env.Undefined();
  });
}

// unwatch(): unregisters this handle and releases its thread-safe function, whose reference to
// onChange would otherwise keep this store reachable (and attached) forever.
Napi::Value StoreWrap::JS_unwatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (waiter_) waiter_->stop();
    waiter_.reset();
    return env.Undefined();
  });
}

// startWaiting(seenSeq): the watcher reports changes after seenSeq until unwatch().
Napi::Value StoreWrap::JS_startWaiting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    uint64_t seen;
    if (!read_count(info[0], seen)) { throw_invalid(env, "startWaiting(seq): bad arguments"); return env.Undefined(); }
    store(env);
    if (waiter_) waiter_->activate(env, static_cast<uint32_t>(seen));
    return env.Undefined();
  });
}

// Test hook (SHMSTORE_TEST_HOOKS=1 only): park inside the lock with a half-done create, after
// writing "parked\n" to stdout, until killed.
Napi::Value StoreWrap::JS_parkInLockForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const char* hooks = std::getenv("SHMSTORE_TEST_HOOKS");
    if (hooks == nullptr || std::string(hooks) != "1") fail(Errc::InvalidArgument, "test hooks are disabled");
    store(env).park_in_lock_for_test([] {
      static const char msg[] = "parked\n";
      [[maybe_unused]] auto n = ::write(1, msg, sizeof msg - 1);
    });
  });
}

}  // namespace shmstore::addon
