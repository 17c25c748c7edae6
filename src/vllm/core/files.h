// Reading a model folder's files without trusting what sits at a path: a FIFO would block
// open() forever, a directory or device is no file to parse, and a symlink loop or an overlong
// name must become a one-line error, not an exception from std::filesystem.
#pragma once

#include <cstddef>
#include <string>

#include "vllm/core/error.h"

namespace vllm {

enum class PathType { kMissing, kRegular, kDirectory, kOther };

// What `path` is, symlinks followed. Never throws: a dangling symlink is kMissing; a FIFO or a
// device, a loop, an overlong name or an unreadable parent folder is kOther, with the reason in
// *why ("is a FIFO, not a regular file", "cannot be read: Too many levels of symbolic links").
PathType path_type(const std::string& path, std::string* why = nullptr);

// Opens `path` read-only if it is a regular file and returns the descriptor (the caller closes
// it) and its size. The open is non-blocking and checked with fstat afterwards, so a path that
// is (or is swapped for) a FIFO or a device is refused instead of blocking.
// Errors: vllm::Error of `kind`, "PATH: is a FIFO, not a regular file", "PATH: cannot open: ...".
int open_regular_file(const std::string& path, size_t* size, ErrorKind kind = ErrorKind::kModelLoad);

// The whole content of a regular file (open_regular_file's rules and errors).
std::string read_regular_file(const std::string& path, ErrorKind kind = ErrorKind::kModelLoad);

}  // namespace vllm
