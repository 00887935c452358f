#include "js_errors.h"

namespace shmstore::addon {

namespace {
struct ErrorFactory {
  Napi::FunctionReference fn;
};
}  // namespace

void set_error_factory(Napi::Env env, Napi::Function factory) {
  auto* data = env.GetInstanceData<ErrorFactory>();
  if (data == nullptr) {
    data = new ErrorFactory();
    env.SetInstanceData(data);  // freed by Node at env teardown
  }
  data->fn = Napi::Persistent(factory);
}

void throw_store_error(Napi::Env env, const char* code, const std::string& message) {
  auto* data = env.GetInstanceData<ErrorFactory>();
  if (data == nullptr || data->fn.IsEmpty()) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("code", Napi::String::New(env, code));
    err.ThrowAsJavaScriptException();
    return;
  }
  Napi::Value err = data->fn.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
  if (env.IsExceptionPending()) return;
  napi_throw(env, err);
}

}  // namespace shmstore::addon
