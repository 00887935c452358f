// Module entry: the NativeStore class and the functions that need no open store.
#include <napi.h>

#include "js_errors.h"
#include "layout.h"
#include "store.h"
#include "store_wrap.h"

namespace shmstore::addon {
namespace {

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "setErrorFactory(fn)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  set_error_factory(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) { throw_invalid(env, "unlink(name): name must be a string"); return env.Undefined(); }
    Store::unlink(info[0].As<Napi::String>().Utf8Value());
    return env.Undefined();
  });
}

Napi::Value PathOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) { throw_invalid(env, "pathOf(name): name must be a string"); return env.Undefined(); }
    const std::string name = info[0].As<Napi::String>();
    Store::check_name(name);
    return Napi::String::New(env, Store::path_of(name));
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeStore", StoreWrap::Init(env));
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory));
  exports.Set("unlink", Napi::Function::New(env, Unlink));
  exports.Set("pathOf", Napi::Function::New(env, PathOf));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("idSize", static_cast<double>(kIdSize));
  limits.Set("alignment", static_cast<double>(kAlign));
  limits.Set("maxClients", kMaxClientsLimit);
  limits.Set("maxObjects", kMaxObjectsLimit);
  limits.Set("cursorsPerClient", kCursorsPerClient);
  limits.Set("layoutVersion", kLayoutVersion);
  limits.Set("copyInLockMax", static_cast<double>(Store::kCopyInLockMax));
  exports.Set("limits", limits);
  return exports;
}

}  // namespace shmstore::addon

static Napi::Object InitShmstore(Napi::Env env, Napi::Object exports) {
  return shmstore::addon::Init(env, exports);
}
NODE_API_MODULE(shmstore, InitShmstore)
