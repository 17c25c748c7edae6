#include "vllm/core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vllm {

namespace {

const char* type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "something other than a file";
}

std::string not_regular(const std::string& path, mode_t mode) {
  return path + ": is " + type_name(mode) + ", not a regular file";
}

}  // namespace

PathType path_type(const std::string& path, std::string* why) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return PathType::kMissing;
    if (why) *why = std::string("cannot be read: ") + std::strerror(err);
    return PathType::kOther;
  }
  if (S_ISREG(st.st_mode)) return PathType::kRegular;
  if (S_ISDIR(st.st_mode)) return PathType::kDirectory;
  if (why) *why = std::string("is ") + type_name(st.st_mode) + ", not a regular file";
  return PathType::kOther;
}

int open_regular_file(const std::string& path, size_t* size, ErrorKind kind) {
  // Checked before opening too: open() of a directory succeeds, and of a FIFO without
  // O_NONBLOCK waits for a writer.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) throw Error(not_regular(path, st.st_mode), kind);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno), kind);
  // The path may have changed between stat and open: the descriptor is what counts.
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(err), kind);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(not_regular(path, st.st_mode), kind);
  }
  // Regular files ignore O_NONBLOCK; cleared anyway so that reads behave as usual.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = static_cast<size_t>(st.st_size);
  return fd;
}

std::string read_regular_file(const std::string& path, ErrorKind kind) {
  size_t size = 0;
  const int fd = open_regular_file(path, &size, kind);
  std::string out;
  out.resize(size);
  size_t got = 0;
  while (true) {
    if (got == out.size()) out.resize(out.size() + 4096);  // the file may have grown
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw Error(path + ": cannot read: " + std::strerror(err), kind);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace vllm
