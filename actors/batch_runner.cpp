#include "actors/batch_runner.h"

#include <cstring>
#include <map>
#include <sstream>

namespace pyflame_rt {
namespace {

// Requests that can share one run: same input names, dtypes and dims after dim 0.
std::string signature(const BatchRequest& r) {
  std::ostringstream os;
  for (const auto& [name, t] : r.feeds) {
    os << name << ':' << static_cast<int>(t.dtype()) << ':' << t.rank();
    for (size_t i = 1; i < t.rank(); ++i) os << ',' << t.dim(i);
    os << ';';
  }
  return os.str();
}

void run_one_by_one(const BatchTarget& target, const std::vector<BatchRequestPtr>& group,
                    BatchRunReport* report) {
  for (const auto& r : group) {
    if (r->answered()) continue;
    r->mark_started(1, 0);
    Expected<std::vector<Tensor>> out = target.run(r->feeds);
    ++report->model_runs;
    if (!out.ok()) ++report->failed;
    r->answer(std::move(out));
  }
}

// Runs the group as one concatenated batch; false when it could not be split back.
bool run_coalesced(const BatchTarget& target, const std::vector<BatchRequestPtr>& group,
                   BatchRunReport* report) {
  std::map<std::string, Tensor> feeds;
  for (const auto& [name, first] : group.front()->feeds) {
    if (first.rank() == 0) return false;
    std::vector<const Tensor*> parts;
    for (const auto& r : group) parts.push_back(&r->feeds.at(name));
    feeds[name] = concat_rows(parts);
  }
  int64_t total = 0;
  int index = 0;
  for (const auto& r : group) {
    total += r->rows();
    r->mark_started(static_cast<int>(group.size()), index++);
  }
  ++report->model_runs;
  Expected<std::vector<Tensor>> out = target.run(feeds);
  if (!out.ok()) return false;  // retried one by one: each request gets its own answer
  for (const Tensor& t : out.value()) {
    if (t.rank() == 0 || t.dim(0) != total) return false;  // output does not keep the batch dim
  }
  int64_t begin = 0;
  for (const auto& r : group) {
    std::vector<Tensor> mine;
    for (const Tensor& t : out.value()) mine.push_back(slice_rows(t, begin, r->rows()));
    begin += r->rows();
    r->answer(std::move(mine));
    ++report->coalesced;
  }
  return true;
}

}  // namespace

Tensor concat_rows(const std::vector<const Tensor*>& parts) {
  const Tensor& first = *parts.front();
  Dims dims = first.dims();
  dims[0] = 0;
  for (const Tensor* p : parts) dims[0] += p->dim(0);
  Tensor out(first.dtype(), dims);
  if (first.dtype() == DType::kString) {
    auto* dst = out.data<std::string>();
    for (const Tensor* p : parts) {
      const auto* src = p->data<std::string>();
      for (int64_t i = 0; i < p->numel(); ++i) *dst++ = src[i];
    }
    return out;
  }
  char* dst = static_cast<char*>(out.raw_data());
  for (const Tensor* p : parts) {
    if (p->nbytes()) std::memcpy(dst, p->raw_data(), p->nbytes());
    dst += p->nbytes();
  }
  return out;
}

Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count) {
  Dims dims = t.dims();
  dims[0] = count;
  Tensor out(t.dtype(), dims);
  int64_t row = t.dim(0) ? t.numel() / t.dim(0) : 0;
  if (t.dtype() == DType::kString) {
    const auto* src = t.data<std::string>() + begin * row;
    auto* dst = out.data<std::string>();
    for (int64_t i = 0; i < count * row; ++i) dst[i] = src[i];
    return out;
  }
  size_t row_bytes = static_cast<size_t>(row) * dtype_size(t.dtype());
  if (out.nbytes()) {
    std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row_bytes, out.nbytes());
  }
  return out;
}

BatchRunReport run_requests(const BatchTarget& target, const std::vector<BatchRequestPtr>& requests) {
  BatchRunReport report;
  std::map<std::string, std::vector<BatchRequestPtr>> groups;
  std::vector<std::string> order;  // first-come order of the groups
  for (const auto& r : requests) {
    if (r->answered()) continue;  // its caller gave up at the deadline
    std::string key = signature(*r);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(r);
  }
  for (const auto& key : order) {
    const auto& group = groups[key];
    bool done = target.dynamic_batch() && group.size() > 1 && run_coalesced(target, group, &report);
    if (!done) run_one_by_one(target, group, &report);
  }
  return report;
}

}  // namespace pyflame_rt
