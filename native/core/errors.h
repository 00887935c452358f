// Error codes of the core. The addon maps each to a StoreError with the same string code;
// the list and the strings live here only (see code_name).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace shmstore {

enum class Errc : uint8_t {
  ObjectExists,
  ObjectNotFound,
  ObjectNotSealed,
  ObjectAlreadySealed,
  ObjectInUse,
  NotCreator,
  StoreFull,
  StoreExists,
  StoreNotFound,
  StoreClosed,
  BadSegment,
  InvalidArgument,
  Timeout,
  Aborted,
  NoSpace,
  TooManyClients,
  System,  // an unexpected OS error: message carries errno text
};

constexpr const char* code_name(Errc c) {
  switch (c) {
    case Errc::ObjectExists: return "ERR_OBJECT_EXISTS";
    case Errc::ObjectNotFound: return "ERR_OBJECT_NOT_FOUND";
    case Errc::ObjectNotSealed: return "ERR_OBJECT_NOT_SEALED";
    case Errc::ObjectAlreadySealed: return "ERR_OBJECT_ALREADY_SEALED";
    case Errc::ObjectInUse: return "ERR_OBJECT_IN_USE";
    case Errc::NotCreator: return "ERR_NOT_CREATOR";
    case Errc::StoreFull: return "ERR_STORE_FULL";
    case Errc::StoreExists: return "ERR_STORE_EXISTS";
    case Errc::StoreNotFound: return "ERR_STORE_NOT_FOUND";
    case Errc::StoreClosed: return "ERR_STORE_CLOSED";
    case Errc::BadSegment: return "ERR_BAD_SEGMENT";
    case Errc::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case Errc::Timeout: return "ERR_TIMEOUT";
    case Errc::Aborted: return "ERR_ABORTED";
    case Errc::NoSpace: return "ERR_NO_SPACE";
    case Errc::TooManyClients: return "ERR_TOO_MANY_CLIENTS";
    case Errc::System: return "ERR_SYSTEM";
  }
  return "ERR_SYSTEM";
}

// The core throws only this; the addon converts it (never lets it cross into Node-API).
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

[[noreturn]] inline void fail(Errc code, const std::string& message) { throw Error(code, message); }

// errno-carrying failure of a system call, classified where a caller can act on it.
[[noreturn]] void fail_errno(const std::string& what, int err);

}  // namespace shmstore
