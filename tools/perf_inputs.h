// The feeds `pyflame-rt perf` runs a model on: .npy files where given, random tensors of the
// model's input shapes elsewhere (symbolic dims from --shapes, the first one from --batch).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "session/inference_session.h"

namespace pyflame_rt {

struct PerfFeedSpec {
  std::vector<std::string> shapes;  // "NAME=1x3x224x224" (several may be comma-separated)
  std::vector<std::string> files;   // "NAME=FILE.npy"
  int64_t batch = 0;                // > 0: size of a symbolic first dim
  uint64_t seed = 0;
};

struct PerfFeed {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> sources;  // name -> "random" or the .npy path
};

// "1x3x224x224" -> {1, 3, 224, 224}; errors name the option text.
Expected<Dims> parse_shape(const std::string& text);

Expected<PerfFeed> make_perf_feed(const std::vector<TensorInfo>& inputs, const PerfFeedSpec& spec);

}  // namespace pyflame_rt
