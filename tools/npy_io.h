// Reading and writing numpy .npy files (format 1.0/2.0/3.0, C order; big-endian data converted on reading) for the CLI.
#pragma once

#include <string>

#include "graph/tensor.h"

namespace pyflame_rt {

Expected<Tensor> read_npy(const std::string& path);
// The same from the file's bytes; `what` names the file in errors. Big-endian dtypes are
// converted; a shape that does not match the data present is an error before any allocation.
Expected<Tensor> read_npy_bytes(const std::string& bytes, const std::string& what);
Status write_npy(const std::string& path, const Tensor& t);

}  // namespace pyflame_rt
