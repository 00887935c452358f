// Helpers shared by the native tests: unique store names that are always unlinked, ids,
// put/read helpers, forked children that report over a pipe, and a deadlock watchdog.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "errors.h"
#include "futex.h"
#include "store.h"

namespace testutil {

using shmstore::Errc;
using shmstore::ObjectId;
using shmstore::Store;
using shmstore::StoreOptions;

// The prefix of every store name a test executable makes. ctest sets SHMSTORE_TEST_PREFIX per
// test (native/test/CMakeLists.txt); names are <prefix>-<pid>-<n>-<tag>.
inline std::string name_prefix() {
  const char* p = std::getenv("SHMSTORE_TEST_PREFIX");
  return (p != nullptr && *p != '\0') ? p : "shmstore-ntest";
}

inline std::string shm_dir() {
  std::string p = Store::path_of("x");
  return p.substr(0, p.size() - 2);
}

// Unlinks segments that an earlier run of a test with this prefix left behind when it crashed
// (its pid is gone). Runs once per process, before the first name is handed out.
inline void sweep_stale_segments() {
  const std::string prefix = name_prefix() + "-";
  DIR* d = ::opendir(shm_dir().c_str());
  if (d == nullptr) return;
  while (dirent* ent = ::readdir(d)) {
    const std::string_view n(ent->d_name);
    if (n.substr(0, prefix.size()) != prefix) continue;
    // Only names of exactly our shape: <prefix>-<pid>-<n>-<tag>.
    char* end = nullptr;
    const long pid = std::strtol(ent->d_name + prefix.size(), &end, 10);
    if (pid <= 0 || end == nullptr || *end != '-') continue;
    char* end2 = nullptr;
    (void)std::strtoul(end + 1, &end2, 10);
    if (end2 == end + 1 || *end2 != '-') continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      ::unlink((shm_dir() + "/" + std::string(n)).c_str());
  }
  ::closedir(d);
}

inline std::string unique_name(std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  static const bool swept = (sweep_stale_segments(), true);
  (void)swept;
  return name_prefix() + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::string(tag);
}

// The paths of the live ShmNames, for a signal handler (the watchdog) that ends the process
// without running destructors: unlink() is async-signal-safe.
struct LiveName {
  std::atomic<pid_t> owner{0};
  char path[512];
};
inline LiveName* live_names() {
  static LiveName table[64];
  return table;
}
inline void unlink_live_names_from_signal_handler() {
  const pid_t self = ::getpid();
  for (int i = 0; i < 64; ++i)
    if (live_names()[i].owner.load() == self) ::unlink(live_names()[i].path);
}

// Owns a store name: unlinks /dev/shm/<name> when it goes out of scope, also when the test
// fails by exception or the watchdog fires. Only the process that made it unlinks (a forked
// child never does).
class ShmName {
 public:
  explicit ShmName(std::string_view tag) : name_(unique_name(tag)), owner_(::getpid()) {
    const std::string p = path();
    for (int i = 0; i < 64 && p.size() < sizeof(LiveName::path); ++i) {
      LiveName& l = live_names()[i];
      pid_t expected = 0;
      if (l.owner.compare_exchange_strong(expected, -1)) {  // claimed, not yet visible
        std::memcpy(l.path, p.c_str(), p.size() + 1);
        l.owner.store(owner_);
        live_ = i;
        break;
      }
    }
  }
  ~ShmName() {
    if (::getpid() != owner_) return;
    ::unlink(path().c_str());
    if (live_ >= 0) live_names()[live_].owner.store(0);
  }
  ShmName(const ShmName&) = delete;
  ShmName& operator=(const ShmName&) = delete;

  const std::string& str() const { return name_; }
  operator std::string_view() const { return name_; }
  std::string path() const { return Store::path_of(name_); }
  bool exists() const { return ::access(path().c_str(), F_OK) == 0; }

 private:
  std::string name_;
  pid_t owner_;
  int live_ = -1;
};

inline StoreOptions options(uint64_t capacity, uint32_t max_objects = 64, uint32_t max_clients = 16,
                            shmstore::Eviction eviction = shmstore::Eviction::Lru) {
  StoreOptions o;
  o.capacity = capacity;
  o.max_objects = max_objects;
  o.max_clients = max_clients;
  o.eviction = eviction;
  return o;
}

// Id n with an optional tag byte; distinct (n, tag) give distinct ids.
inline ObjectId make_id(uint64_t n, uint8_t tag = 0) {
  ObjectId id{};
  std::memcpy(id.data(), &n, sizeof n);
  id[8] = tag;
  id[19] = 0x5a;
  return id;
}

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline std::string as_string(const uint8_t* p, uint64_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

// The byte at position i of an object written with pattern seed `seed`.
inline uint8_t pattern_byte(uint64_t seed, uint64_t i) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + (i / 8) + 1;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return static_cast<uint8_t>(x >> (8 * (i % 8)));
}

inline void fill_pattern(uint8_t* p, uint64_t n, uint64_t seed) {
  for (uint64_t i = 0; i < n; ++i) p[i] = pattern_byte(seed, i);
}

inline bool has_pattern(const uint8_t* p, uint64_t n, uint64_t seed) {
  for (uint64_t i = 0; i < n; ++i)
    if (p[i] != pattern_byte(seed, i)) return false;
  return true;
}

// create + fill with the pattern + seal.
inline void put(Store& s, const ObjectId& id, uint64_t size, uint64_t seed = 1,
                std::string_view metadata = {}) {
  shmstore::ObjectView v = s.create_object(id, size, as_bytes(metadata));
  fill_pattern(v.data, size, seed);
  s.seal(id);
}

inline uint64_t alloc_size(uint64_t data_size, uint64_t metadata_size) {
  const uint64_t n = data_size + metadata_size;
  return shmstore::round_up(n == 0 ? 1 : n, shmstore::kAlign);
}

// Sum of the allocation sizes of every listed (non-free) object.
inline uint64_t listed_bytes(Store& s) {
  uint64_t sum = 0;
  for (const shmstore::ObjectInfo& o : s.list()) sum += alloc_size(o.data_size, o.metadata_size);
  return sum;
}

// The accounting invariants of layout.h, seen through the public API (stats() first: it
// reclaims dead clients).
inline void check_accounting(Store& s) {
  const auto st = s.stats();
  uint32_t visible = 0, sealed = 0, deleting = 0;
  uint64_t bytes = 0;
  for (const auto& o : s.list()) {
    bytes += alloc_size(o.data_size, o.metadata_size);
    if (o.state == shmstore::ObjectState::Deleting) ++deleting;
    else ++visible;
    if (o.state == shmstore::ObjectState::Sealed) ++sealed;
  }
  CHECK_EQ(st.used_bytes, bytes);
  CHECK_EQ(st.objects, visible);
  CHECK_EQ(st.sealed, sealed);
  CHECK_EQ(st.deleting, deleting);
  CHECK(st.used_bytes <= st.capacity);
  CHECK(st.largest_free <= st.capacity - st.used_bytes);
}

inline const shmstore::ObjectInfo* find_info(const std::vector<shmstore::ObjectInfo>& list,
                                              const ObjectId& id) {
  for (const auto& o : list)
    if (o.id == id) return &o;
  return nullptr;
}

// ---- forked children -----------------------------------------------------------------------

// A child process running `body(write_fd)`. The body reports readiness by writing a line to
// write_fd (write_line); an exception in the body is written as "error: ..." and the child exits
// with status 2. The child never returns into the test runner and never runs destructors of the
// parent's objects: it leaves with _exit.
// A Child still running when it goes out of scope (a test that failed half-way) is killed and
// reaped, so no orphan stays attached to the store.
struct Child {
  pid_t pid = -1;
  int read_fd = -1;

  Child() = default;
  Child(pid_t p, int fd) : pid(p), read_fd(fd) {}
  Child(Child&& o) noexcept : pid(std::exchange(o.pid, -1)), read_fd(std::exchange(o.read_fd, -1)) {}
  Child& operator=(Child&& o) noexcept {
    if (this != &o) {
      end();
      pid = std::exchange(o.pid, -1);
      read_fd = std::exchange(o.read_fd, -1);
    }
    return *this;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { end(); }

  void end() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (read_fd >= 0) ::close(read_fd);
    pid = -1;
    read_fd = -1;
  }
};

inline void write_line(int fd, const std::string& line) {
  const std::string s = line + "\n";
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

inline Child spawn(const std::function<void(int)>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::abort();
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    ::close(fds[0]);
    int status = 0;
    try {
      body(fds[1]);
    } catch (const shmstore::Error& e) {
      write_line(fds[1], std::string("error: ") + shmstore::code_name(e.code()) + " " + e.what());
      status = 2;
    } catch (const std::exception& e) {
      write_line(fds[1], std::string("error: ") + e.what());
      status = 2;
    } catch (...) {
      write_line(fds[1], "error: unknown exception");
      status = 2;
    }
    ::_exit(status);
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads one line from the child (without the newline); "" on EOF or after timeout_ms.
inline std::string read_line(int fd, int timeout_ms) {
  std::string out;
  const int64_t give_up = shmstore::futex::monotonic_ns() + int64_t{timeout_ms} * 1'000'000;
  for (;;) {
    const int64_t left_ms = (give_up - shmstore::futex::monotonic_ns()) / 1'000'000;
    if (left_ms <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left_ms));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return out;
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') return out;
    out += c;
  }
}

// Waits for the child; returns the raw wait status.
inline int reap(Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (c.read_fd >= 0) ::close(c.read_fd);
  c.read_fd = -1;
  c.pid = -1;
  return status;
}

inline int kill_and_reap(Child& c, int sig = SIGKILL) {
  ::kill(c.pid, sig);
  return reap(c);
}

// Runs fn in a forked child and returns its wait status: a crash (SIGSEGV, SIGBUS, a sanitizer
// abort) stays in the child and shows as a status instead of killing the test runner.
inline int run_isolated(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    int code = 99;
    try {
      code = fn();
    } catch (const shmstore::Error& e) {
      std::fprintf(stderr, "child: uncaught %s: %s\n", shmstore::code_name(e.code()), e.what());
      code = 98;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: uncaught exception: %s\n", e.what());
      code = 98;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Ends the process with a message if it is still inside the guarded scope after `seconds`
// (a deadlock would otherwise only show as a ctest timeout).
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds) {
    struct sigaction sa{};
    sa.sa_handler = [](int) {
      static const char msg[] = "\nWATCHDOG: deadline passed (deadlock?)\n";
      (void)!::write(2, msg, sizeof msg - 1);
      unlink_live_names_from_signal_handler();
      ::_exit(3);
    };
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(seconds);
  }
  ~Watchdog() { ::alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

}  // namespace testutil
