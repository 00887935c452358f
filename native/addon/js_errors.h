// The one place where core errors become JavaScript StoreErrors. Every JS-facing method runs
// inside guarded(), so no C++ exception ever crosses into Node-API.
#pragma once

#include <napi.h>

#include <exception>
#include <string>

#include "errors.h"

namespace shmstore::addon {

// Set once at load from JS: (code, message) => StoreError.
void set_error_factory(Napi::Env env, Napi::Function factory);
void throw_store_error(Napi::Env env, const char* code, const std::string& message);
inline void throw_invalid(Napi::Env env, const std::string& message) {
  throw_store_error(env, code_name(Errc::InvalidArgument), message);
}

template <typename F>
Napi::Value guarded(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throw_store_error(env, code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw_store_error(env, "ERR_SYSTEM", "out of memory");
  } catch (const std::exception& e) {
    throw_store_error(env, "ERR_SYSTEM", e.what());
  }
  return env.Undefined();
}

}  // namespace shmstore::addon
