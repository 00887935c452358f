// A tiny header-only test harness for the core's native tests (no external framework).
//
//   TEST(name) { CHECK(cond); CHECK_EQ(a, b); CHECK_THROWS_CODE(expr, Errc::X); REQUIRE(cond); }
//
// CHECK* record a failure and go on; REQUIRE* end the current test (use them where going on
// would dereference something that is not there). An exception escaping a test fails it.
// The checks are thread-safe, so worker threads may use CHECK (not REQUIRE: it throws).
// main() runs every registered test (or those whose name contains argv[1]), prints one line
// per test and, as its own last line, "N passed, M failed"; it exits non-zero on any failure.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.h"

namespace check {

struct TestCase {
  const char* name;
  void (*fn)();
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

// Thrown by REQUIRE* to leave the current test.
struct Abort {};

inline std::atomic<int>& current_failures() {
  static std::atomic<int> n{0};
  return n;
}

inline std::mutex& output_mutex() {
  static std::mutex m;
  return m;
}

inline void report(const char* file, int line, const std::string& what) {
  current_failures().fetch_add(1);
  std::lock_guard<std::mutex> lock(output_mutex());
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  std::fflush(stderr);
}

// Printing of values in failure messages: anything streamable, else a placeholder.
template <typename T, typename = void>
struct Streamable : std::false_type {};
template <typename T>
struct Streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

template <typename T>
std::string show(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else if constexpr (std::is_same_v<T, unsigned char> || std::is_same_v<T, signed char>) {
    return std::to_string(static_cast<int>(v));
  } else if constexpr (Streamable<T>::value) {
    std::ostringstream os;
    os << v;
    return os.str();
  } else {
    return "<value>";
  }
}

template <typename A, typename B>
bool check_eq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
  bool equal;
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
    equal = std::cmp_equal(a, b);  // no signed/unsigned surprises
  else
    equal = (a == b);
  if (!equal)
    report(file, line, std::string(ea) + " == " + eb + "  (" + show(a) + " vs " + show(b) + ")");
  return equal;
}

// Runs fn and checks that it throws shmstore::Error with the given code.
inline bool check_throws_code(const std::function<void()>& fn, shmstore::Errc want, const char* expr,
                              const char* file, int line) {
  try {
    fn();
  } catch (const shmstore::Error& e) {
    if (e.code() == want) return true;
    report(file, line, std::string(expr) + " threw " + shmstore::code_name(e.code()) + " (" +
                           e.what() + "), expected " + shmstore::code_name(want));
    return false;
  } catch (const std::exception& e) {
    report(file, line, std::string(expr) + " threw a non-store exception: " + e.what() +
                           ", expected " + shmstore::code_name(want));
    return false;
  } catch (...) {
    report(file, line, std::string(expr) + " threw an unknown exception, expected " +
                           shmstore::code_name(want));
    return false;
  }
  report(file, line, std::string(expr) + " did not throw, expected " + shmstore::code_name(want));
  return false;
}

inline int run_all(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const TestCase& t : registry()) {
    if (filter != nullptr && std::strstr(t.name, filter) == nullptr) continue;
    current_failures().store(0);
    {
      std::lock_guard<std::mutex> lock(output_mutex());
      std::printf("[ RUN  ] %s\n", t.name);
      std::fflush(stdout);
    }
    const auto t0 = std::chrono::steady_clock::now();
    try {
      t.fn();
    } catch (const Abort&) {
      // already reported
    } catch (const shmstore::Error& e) {
      report(__FILE__, __LINE__, std::string("uncaught shmstore::Error ") +
                                     shmstore::code_name(e.code()) + ": " + e.what());
    } catch (const std::exception& e) {
      report(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    } catch (...) {
      report(__FILE__, __LINE__, "uncaught unknown exception");
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    const bool ok = current_failures().load() == 0;
    (ok ? passed : failed) += 1;
    std::lock_guard<std::mutex> lock(output_mutex());
    std::printf("[ %s ] %s (%lld ms)\n", ok ? " OK " : "FAIL", t.name, static_cast<long long>(ms));
    std::fflush(stdout);
  }
  if (passed + failed == 0) {
    std::printf("no test matches '%s'\n", filter != nullptr ? filter : "");
    failed = 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK_CAT_(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT_(a, b)

#define TEST(name)                                                              \
  static void CHECK_CAT(test_, name)();                                         \
  static const ::check::Registrar CHECK_CAT(registrar_, name)(#name, &CHECK_CAT(test_, name)); \
  static void CHECK_CAT(test_, name)()

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) ::check::report(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define REQUIRE(cond)                                                  \
  do {                                                                 \
    if (!(cond)) {                                                     \
      ::check::report(__FILE__, __LINE__, "REQUIRE(" #cond ")");       \
      throw ::check::Abort{};                                          \
    }                                                                  \
  } while (0)

#define CHECK_EQ(a, b) ((void)::check::check_eq((a), (b), #a, #b, __FILE__, __LINE__))

#define REQUIRE_EQ(a, b)                                                        \
  do {                                                                          \
    if (!::check::check_eq((a), (b), #a, #b, __FILE__, __LINE__)) throw ::check::Abort{}; \
  } while (0)

#define CHECK_THROWS_CODE(expr, code)                                                        \
  ((void)::check::check_throws_code([&]() { (void)(expr); }, ::shmstore::code, #expr, __FILE__, \
                                    __LINE__))

#define CHECK_NOTHROW(expr)                                                                  \
  do {                                                                                       \
    try {                                                                                    \
      (void)(expr);                                                                          \
    } catch (const std::exception& e_) {                                                     \
      ::check::report(__FILE__, __LINE__, std::string(#expr " threw: ") + e_.what());        \
    }                                                                                        \
  } while (0)

// The test executable's main (one test file per executable); define CHECK_NO_MAIN to supply
// your own.
#ifndef CHECK_NO_MAIN
int main(int argc, char** argv) { return ::check::run_all(argc, argv); }
#endif
