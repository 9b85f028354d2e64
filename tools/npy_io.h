// Reading and writing numpy .npy files (format 1.0/2.0, little-endian, C order) for the CLI.
#pragma once

#include <string>

#include "graph/tensor.h"

namespace pyflame_rt {

Expected<Tensor> read_npy(const std::string& path);
Status write_npy(const std::string& path, const Tensor& t);

}  // namespace pyflame_rt
