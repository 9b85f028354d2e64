// Runs a batch of requests on a target and answers each one. CAF-free: the device actor
// calls it, and tests call it directly.
//
// Requests whose feeds have the same names, dtypes and trailing dims are concatenated along
// dim 0 and run once when the model's batch dim is dynamic; the outputs are split back by each
// request's rows. Models with a fixed batch dim, outputs that do not keep dim 0, and a
// coalesced run that fails all fall back to one run per request, so one bad request never
// takes its neighbours down with it.
#pragma once

#include <vector>

#include "actors/batch_request.h"
#include "actors/batch_target.h"

namespace pyflame_rt {

struct BatchRunReport {
  size_t model_runs = 0;   // calls into the target
  size_t coalesced = 0;    // requests answered from a concatenated run
  size_t failed = 0;       // requests answered with the model's error
};

BatchRunReport run_requests(const BatchTarget& target, const std::vector<BatchRequestPtr>& requests);

// Concatenates tensors of equal dtype and trailing dims along dim 0 (exposed for tests).
Tensor concat_rows(const std::vector<const Tensor*>& parts);
// Rows [begin, begin + count) of t, copied.
Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count);

}  // namespace pyflame_rt
