#include "session/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pyflame_rt {

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_status(StatusCode::kNoSuchFile, "'", path, "' cannot be opened: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_status(StatusCode::kNoSuchFile, "'", path, "' cannot be read: ", std::strerror(err));
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    // Populated read-only, then made writable: populating a writable private mapping would
    // break copy-on-write on every page (a copy of the whole file); this way the pages stay
    // the page cache's until something writes into one.
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED || ::mprotect(p, f->size_, PROT_READ | PROT_WRITE) != 0) {
      int err = errno;
      if (p != MAP_FAILED) ::munmap(p, f->size_);
      ::close(fd);
      return make_status(StatusCode::kNoSuchFile, "'", path, "' cannot be mapped: ", std::strerror(err));
    }
    f->data_ = static_cast<char*>(p);
  }
  ::close(fd);  // the mapping keeps the file
  return f;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace pyflame_rt
