// Creating, opening, validating and unlinking the segment file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "errors.h"
#include "futex.h"
#include "lock.h"
#include "store.h"

namespace shmstore {

void fail_errno(const std::string& what, int err) {
  const std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOSPC:
    case ENOMEM:
    case EFBIG:
      fail(Errc::NoSpace, msg);
    case EINVAL:
    case ENAMETOOLONG:
      fail(Errc::InvalidArgument, msg);
    default:
      fail(Errc::System, msg);
  }
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; glibc defines it from 2.35 on
#endif

namespace {

constexpr size_t kMaxNameLength = 200;
constexpr int64_t kOpenRetryNs = 2'000'000'000;  // how long open waits for a creator to finish

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint32_t next_pow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return static_cast<uint32_t>(p);
}

uint32_t index_slots_for(uint32_t max_objects) { return next_pow2(uint64_t{max_objects} * 2); }

// Fresh mapping of the whole file.
Mapping map_file(int fd, size_t size) {
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) fail_errno("mmap", errno);
  return Mapping(addr, size);
}

void check_options(const StoreOptions& o) {
  if (o.capacity < kAlign || o.capacity > (uint64_t{1} << 46))
    fail(Errc::InvalidArgument, "capacity must be between 64 bytes and 64 TiB");
  if (o.max_objects < 1 || o.max_objects > kMaxObjectsLimit)
    fail(Errc::InvalidArgument, "maxObjects must be between 1 and " +
                                    std::to_string(kMaxObjectsLimit));
  if (o.max_clients < 1 || o.max_clients > kMaxClientsLimit)
    fail(Errc::InvalidArgument, "maxClients must be between 1 and " +
                                    std::to_string(kMaxClientsLimit));
  if (!is_pow2(o.notify_capacity) || o.notify_capacity > (1u << 20))
    fail(Errc::InvalidArgument, "notification capacity must be a power of two <= 2^20");
  if ((o.mode & ~0777u) != 0) fail(Errc::InvalidArgument, "mode must be a permission mask (0..0o777)");
  if (o.eviction != Eviction::None && o.eviction != Eviction::Lru)
    fail(Errc::InvalidArgument, "unknown eviction policy");
}

void init_mutex(pthread_mutex_t* m) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  // Robust: a holder that dies hands the next locker EOWNERDEAD instead of a deadlock.
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) fail_errno("pthread_mutex_init", rc);
}

// Validates the header against the file size; every later access relies on this.
void validate(const SegmentHeader& hdr, uint64_t file_size) {
  const SegmentHeader* h = &hdr;
  auto bad = [](const std::string& why) { fail(Errc::BadSegment, "bad segment: " + why); };
  if (h->layout_version != kLayoutVersion)
    bad("layout version " + std::to_string(h->layout_version) + ", expected " +
        std::to_string(kLayoutVersion));
  if (h->header_size != sizeof(SegmentHeader)) bad("header size mismatch");
  if (h->segment_size != file_size) bad("recorded size differs from the file size");
  if (h->max_objects < 1 || h->max_objects > kMaxObjectsLimit) bad("max_objects out of range");
  if (h->max_clients < 1 || h->max_clients > kMaxClientsLimit) bad("max_clients out of range");
  if (h->index_slots != index_slots_for(h->max_objects)) bad("index size mismatch");
  if (!is_pow2(h->notify_capacity) || h->notify_capacity > (1u << 20)) bad("notify capacity");
  if (h->capacity < kAlign || h->capacity > (uint64_t{1} << 46)) bad("capacity out of range");
  if (h->eviction > static_cast<uint32_t>(Eviction::Lru)) bad("unknown eviction policy");
  const RegionLayout l = region_layout(h->max_clients, h->max_objects, h->index_slots,
                                       h->notify_capacity, h->capacity);
  if (h->clients_offset != l.clients_offset || h->objects_offset != l.objects_offset ||
      h->index_offset != l.index_offset || h->entry_free_offset != l.entry_free_offset ||
      h->extents_offset != l.extents_offset || h->notify_offset != l.notify_offset ||
      h->data_offset != l.data_offset)
    bad("region offsets do not match the layout");
  if (l.segment_size != file_size || l.data_offset + h->capacity > file_size)
    bad("regions extend past the end of the file");
}

}  // namespace

std::string Store::path_of(std::string_view name) {
  const char* dir = std::getenv("SHMSTORE_SHM_DIR");
  std::string path = (dir != nullptr && *dir != '\0') ? dir : "/dev/shm";
  path += '/';
  path += name;
  return path;
}

void Store::check_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength)
    fail(Errc::InvalidArgument, "store name must be 1 to 200 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) fail(Errc::InvalidArgument, "store name may hold only letters, digits, '.', '-' and '_'");
  }
  if (name.front() == '.' || name.find("..") != std::string_view::npos)
    fail(Errc::InvalidArgument, "store name may not start with '.' or contain '..'");
}

std::unique_ptr<Store> Store::create(std::string_view name, const StoreOptions& o) {
  check_name(name);
  check_options(o);
  const uint32_t index_slots = index_slots_for(o.max_objects);
  const RegionLayout l =
      region_layout(o.max_clients, o.max_objects, index_slots, o.notify_capacity, o.capacity);
  const std::string path = path_of(name);

  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, o.mode));
  if (!fd) {
    if (errno == EEXIST) fail(Errc::StoreExists, "store '" + std::string(name) + "' already exists");
    if (errno == ENOENT) fail(Errc::StoreNotFound, "shared-memory directory missing: " + path);
    fail_errno("create " + path, errno);
  }
  // From here on a failure must not leave a half-made file behind.
  struct UnlinkOnFailure {
    const std::string& p;
    bool armed = true;
    ~UnlinkOnFailure() {
      if (armed) ::unlink(p.c_str());
    }
  } guard{path};

  if (::fchmod(fd.get(), o.mode) != 0) fail_errno("fchmod", errno);  // umask must not narrow it
  // Fail fast on an impossible size: fallocate on tmpfs would first eat memory page by page.
  struct statvfs vfs{};
  if (::fstatvfs(fd.get(), &vfs) == 0 && vfs.f_frsize > 0) {
    const uint64_t avail = vfs.f_bavail > UINT64_MAX / vfs.f_frsize ? UINT64_MAX : uint64_t{vfs.f_bavail} * vfs.f_frsize;
    if (avail < l.segment_size)
      fail(Errc::NoSpace, "not enough room in " + path_of("") + " for " + std::to_string(l.segment_size) +
                              " bytes (" + std::to_string(avail) + " free)");
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(l.segment_size)) != 0) fail_errno("ftruncate", errno);
  // Reserve every page now: a full tmpfs must fail here, not with SIGBUS on first touch.
  if (const int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(l.segment_size)); rc != 0) {
    if (rc == ENOSPC) fail(Errc::NoSpace, "no space for a " + std::to_string(l.segment_size) +
                                              "-byte segment in " + path_of(""));
    fail_errno("posix_fallocate", rc);
  }
  Mapping map = map_file(fd.get(), l.segment_size);

  auto* h = reinterpret_cast<SegmentHeader*>(map.data());
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(SegmentHeader);
  h->segment_size = l.segment_size;
  h->capacity = o.capacity;
  h->max_objects = o.max_objects;
  h->max_clients = o.max_clients;
  h->index_slots = index_slots;
  h->notify_capacity = o.notify_capacity;
  h->clients_offset = l.clients_offset;
  h->objects_offset = l.objects_offset;
  h->index_offset = l.index_offset;
  h->entry_free_offset = l.entry_free_offset;
  h->extents_offset = l.extents_offset;
  h->notify_offset = l.notify_offset;
  h->data_offset = l.data_offset;
  h->eviction = static_cast<uint32_t>(o.eviction);
  init_mutex(&h->mutex);

  std::unique_ptr<Store> s(new Store(std::string(name), std::move(fd), std::move(map)));
  s->bind_regions(*h);
  {
    Locked lock(*s);  // the file is new: zero-filled pages are the empty state
    s->repair_locked();
    h->repairs = 0;
  }
  // Publish last: an opener that sees the magic sees everything above.
  std::atomic_ref<uint64_t>(h->magic).store(kMagic, std::memory_order_release);
  s->attach_client();
  guard.armed = false;
  return s;
}

std::unique_ptr<Store> Store::open(std::string_view name) {
  check_name(name);
  const std::string path = path_of(name);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) fail(Errc::StoreNotFound, "no store named '" + std::string(name) + "'");
    fail_errno("open " + path, errno);
  }
  // A creator may still be sizing or initialising the file: wait briefly for the magic.
  const int64_t give_up = futex::monotonic_ns() + kOpenRetryNs;
  for (;;) {
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) fail_errno("fstat", errno);
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size >= sizeof(SegmentHeader)) {
      Mapping map = map_file(fd.get(), size);
      auto* h = reinterpret_cast<SegmentHeader*>(map.data());
      const uint64_t magic = std::atomic_ref<uint64_t>(h->magic).load(std::memory_order_acquire);
      if (magic == kMagic) {
        // Validate and bind from one private copy: another process cannot change what we
        // checked between the check and the use.
        SegmentHeader snapshot;
        std::memcpy(static_cast<void*>(&snapshot), h, sizeof snapshot);
        validate(snapshot, size);
        std::unique_ptr<Store> s(new Store(std::string(name), std::move(fd), std::move(map)));
        s->bind_regions(snapshot);
        s->attach_client();
        return s;
      }
      if (magic != 0) fail(Errc::BadSegment, "bad segment: '" + std::string(name) + "' is not a shmstore segment");
    }
    if (futex::monotonic_ns() > give_up)
      fail(Errc::BadSegment, "bad segment: '" + std::string(name) + "' was never initialised");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Store::prefault() {
  // The pages exist (posix_fallocate at create); what is missing is this process's page-table
  // entries, one minor fault per 4 KiB on first touch: ~256 in the first write of a 1 MiB
  // object, the first time round the store.
  if (::madvise(map_.data(), map_.size(), MADV_POPULATE_WRITE) == 0) return;
  if (errno == EINVAL) return;  // a kernel before 5.14: faults stay lazy, nothing else changes
  fail_errno("madvise(MADV_POPULATE_WRITE)", errno);
}

void Store::unlink(std::string_view name) {
  check_name(name);
  if (::unlink(path_of(name).c_str()) != 0) {
    if (errno == ENOENT) fail(Errc::StoreNotFound, "no store named '" + std::string(name) + "'");
    fail_errno("unlink", errno);
  }
}

Store::Store(std::string name, UniqueFd fd, Mapping map)
    : name_(std::move(name)), fd_(std::move(fd)), map_(std::move(map)) {}

Store::~Store() { detach_client(); }

void Store::bind_regions(const SegmentHeader& h) {
  uint8_t* base = map_.data();
  hdr_ = reinterpret_cast<SegmentHeader*>(base);
  capacity_ = h.capacity;
  max_objects_ = h.max_objects;
  max_clients_ = h.max_clients;
  index_mask_ = h.index_slots - 1;
  notify_capacity_ = h.notify_capacity;
  eviction_ = static_cast<Eviction>(h.eviction);
  clients_ = reinterpret_cast<ClientSlot*>(base + h.clients_offset);
  objects_ = reinterpret_cast<ObjectEntry*>(base + h.objects_offset);
  index_ = reinterpret_cast<uint32_t*>(base + h.index_offset);
  entry_free_ = reinterpret_cast<uint32_t*>(base + h.entry_free_offset);
  extents_ = reinterpret_cast<FreeExtent*>(base + h.extents_offset);
  notify_ = reinterpret_cast<NotifyEvent*>(base + h.notify_offset);
  data_ = base + h.data_offset;
}

}  // namespace shmstore
