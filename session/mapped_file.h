// MappedFile: a whole file mapped into memory (read, copy-on-write), for plan files whose
// weights tensors view in place and for hashing a model without reading it into a string.
//
//   ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> f, MappedFile::open("model.onnx"));
//   std::string_view bytes = f->bytes();
//   Tensor w = Tensor::wrap(dtype, dims, f->data() + offset, f);  // keeps the mapping alive
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "graph/status.h"

namespace pyflame_rt {

class MappedFile {
 public:
  // kNoSuchFile naming the path when it cannot be opened or mapped. The pages are read in
  // at once (MAP_POPULATE): callers touch all of them, and one call beats a fault per page.
  static Expected<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Private (copy-on-write) pages: a kernel that writes into a weight changes its own copy,
  // never the file.
  char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pyflame_rt
