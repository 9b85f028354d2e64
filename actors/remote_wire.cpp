#include "actors/remote_wire.h"

#include <cstring>

namespace pyflame_rt {

void register_wire_types(caf::actor_system_config& config) {
  config.add_message_type<WireTensor>("pyflame_rt::WireTensor");
  config.add_message_type<WireFrame>("pyflame_rt::WireFrame");
  config.add_message_type<WireStageInfo>("pyflame_rt::WireStageInfo");
  config.add_message_type<WireReply>("pyflame_rt::WireReply");
}

WireTensor to_wire(const std::string& name, const Tensor& t) {
  WireTensor w;
  w.name = name;
  w.dtype = static_cast<int32_t>(t.dtype());
  w.dims.assign(t.dims().begin(), t.dims().end());
  if (t.dtype() == DType::kString) {
    const std::string* p = t.data<std::string>();
    w.strings.assign(p, p + t.numel());
  } else if (t.nbytes() > 0) {
    w.bytes.assign(static_cast<const char*>(t.raw_data()), t.nbytes());
  }
  return w;
}

Expected<Tensor> from_wire(const WireTensor& w) {
  auto dtype = static_cast<DType>(w.dtype);
  if (dtype_size(dtype) == 0) {
    return invalid_argument("wire tensor '", w.name, "': unknown dtype code ", w.dtype);
  }
  int64_t count = 1;
  for (int64_t d : w.dims) {
    if (d < 0) return invalid_argument("wire tensor '", w.name, "': dims must be >= 0, got ", d);
    if (d > 0 && count > (int64_t{1} << 40) / d) {
      return invalid_argument("wire tensor '", w.name, "': too many elements");
    }
    count *= d;
  }
  // The sizes are checked against what arrived before allocating: dims announcing 2^40
  // elements with a few bytes behind them must not reserve terabytes (found by the
  // stage_wire fuzz target: bad_alloc out of the stage server).
  if (dtype == DType::kString ? static_cast<int64_t>(w.strings.size()) != count
                              : w.bytes.size() != static_cast<uint64_t>(count) * dtype_size(dtype)) {
    return invalid_argument("wire tensor '", w.name, "': dims ", dims_to_string(Dims(w.dims.begin(), w.dims.end())),
                            " need ", count, dtype == DType::kString ? " strings" : " elements", ", got ",
                            dtype == DType::kString ? w.strings.size() : w.bytes.size(),
                            dtype == DType::kString ? " strings" : " bytes");
  }
  Tensor t(dtype, Dims(w.dims.begin(), w.dims.end()));
  if (dtype == DType::kString) {
    std::string* p = t.data<std::string>();
    for (int64_t i = 0; i < count; ++i) p[i] = w.strings[i];
  } else {
    if (w.bytes.size() != t.nbytes()) {
      return invalid_argument("wire tensor '", w.name, "': expected ", t.nbytes(), " bytes for ", t.summary(),
                              ", got ", w.bytes.size());
    }
    if (dtype == DType::kBool) {  // any non-zero byte is true: a bool object holds only 0 or 1
      bool* p = t.data<bool>();
      for (int64_t i = 0; i < count; ++i) p[i] = w.bytes[i] != 0;
    } else if (!w.bytes.empty()) {
      std::memcpy(t.raw_data(), w.bytes.data(), w.bytes.size());
    }
  }
  return t;
}

WireFrame to_wire(const Frame& frame) {
  WireFrame w;
  w.tensors.reserve(frame.size());
  for (const auto& [name, t] : frame) w.tensors.push_back(to_wire(name, t));
  return w;
}

Expected<Frame> from_wire(const WireFrame& w) {
  Frame frame;
  for (const WireTensor& wt : w.tensors) {
    ASSIGN_OR_RETURN(Tensor t, from_wire(wt));
    frame[wt.name] = std::move(t);
  }
  return frame;
}

}  // namespace pyflame_rt
