// NativeStore: the JS class over one store handle. Arguments arrive checked by src/store.ts;
// the checks here only keep a wrong call from crashing (ERR_INVALID_ARGUMENT).
#pragma once

#include <napi.h>

#include <memory>

#include "session.h"
#include "waiter.h"

namespace shmstore::addon {

class StoreWrap : public Napi::ObjectWrap<StoreWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new NativeStore('create', name, capacity, maxObjects, maxClients, eviction, mode,
  //                 notifyCapacity, out) | new NativeStore('open', name, out)
  explicit StoreWrap(const Napi::CallbackInfo& info);
  ~StoreWrap() override;

 private:
  Store& store(Napi::Env env);
  void close_now();

  Napi::Value JS_close(const Napi::CallbackInfo& info);
  Napi::Value JS_create(const Napi::CallbackInfo& info);
  Napi::Value JS_seal(const Napi::CallbackInfo& info);
  Napi::Value JS_abort(const Napi::CallbackInfo& info);
  Napi::Value JS_get(const Napi::CallbackInfo& info);
  Napi::Value JS_put(const Napi::CallbackInfo& info);
  Napi::Value JS_read(const Napi::CallbackInfo& info);
  Napi::Value JS_release(const Napi::CallbackInfo& info);
  Napi::Value JS_releaseId(const Napi::CallbackInfo& info);
  Napi::Value JS_contains(const Napi::CallbackInfo& info);
  Napi::Value JS_delete(const Napi::CallbackInfo& info);
  Napi::Value JS_evict(const Napi::CallbackInfo& info);
  Napi::Value JS_list(const Napi::CallbackInfo& info);
  Napi::Value JS_clients(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);
  Napi::Value JS_setCursor(const Napi::CallbackInfo& info);
  Napi::Value JS_clearCursor(const Napi::CallbackInfo& info);
  Napi::Value JS_cursorValues(const Napi::CallbackInfo& info);
  Napi::Value JS_notifyHead(const Napi::CallbackInfo& info);
  Napi::Value JS_readEvents(const Napi::CallbackInfo& info);
  Napi::Value JS_changeSeq(const Napi::CallbackInfo& info);
  Napi::Value JS_prefault(const Napi::CallbackInfo& info);
  Napi::Value JS_watch(const Napi::CallbackInfo& info);
  Napi::Value JS_unwatch(const Napi::CallbackInfo& info);
  Napi::Value JS_startWaiting(const Napi::CallbackInfo& info);
  Napi::Value JS_parkInLockForTest(const Napi::CallbackInfo& info);

  std::shared_ptr<Session> session_ = std::make_shared<Session>();
  std::unique_ptr<Waiter> waiter_;
  // [dataSize, metadataSize, entry, generation] of the last get/seal. An ArrayBuffer-backed
  // Float64Array never moves, so the pointer stays valid while the reference keeps it alive.
  Napi::Reference<Napi::Float64Array> out_ref_;
  double* out_ = nullptr;
};

}  // namespace shmstore::addon
