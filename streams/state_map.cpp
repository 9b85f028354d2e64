#include "streams/state_map.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace pyflame_rt {
namespace {

// A name and its forms without one state-ish suffix: "h0" -> {h0, h}, "h_out" -> {h_out, h}.
std::set<std::string> stems(const std::string& name) {
  static const char* kSuffixes[] = {"_input", "_output", "_in", "_out", "_prev", "_next", "_new",
                                    "_init", "_0", "_n", "0", "n"};
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  std::set<std::string> out{lower};
  for (const char* suffix : kSuffixes) {
    std::string s(suffix);
    if (lower.size() > s.size() && lower.compare(lower.size() - s.size(), s.size(), s) == 0) {
      out.insert(lower.substr(0, lower.size() - s.size()));
    }
  }
  return out;
}

bool shapes_compatible(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known) return true;
  if (a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i) {
    if (a.dims[i].known() && b.dims[i].known() && a.dims[i].value != b.dims[i].value) return false;
  }
  return true;
}

std::string names_of(const std::vector<ValueInfo>& values) {
  std::string s;
  for (const auto& v : values) s += (s.empty() ? "'" : ", '") + v.name + "'";
  return s;
}

const ValueInfo* find(const std::vector<ValueInfo>& values, const std::string& name) {
  for (const auto& v : values) if (v.name == name) return &v;
  return nullptr;
}

Status check_pair(const ValueInfo& in, const ValueInfo& out) {
  if (in.dtype != out.dtype || !shapes_compatible(in.shape, out.shape)) {
    return invalid_argument("state '", in.name, "' <- '", out.name, "': expected the output to match the input ",
                            dtype_name(in.dtype), in.shape.to_string(), ", got ", dtype_name(out.dtype),
                            out.shape.to_string());
  }
  return Status::OK();
}

}  // namespace

Expected<std::vector<StatePair>> find_state_pairs(const std::vector<ValueInfo>& inputs,
                                                  const std::vector<ValueInfo>& outputs,
                                                  const std::map<std::string, std::string>& given) {
  std::vector<StatePair> pairs;
  if (!given.empty()) {
    for (const auto& [in_name, out_name] : given) {
      const ValueInfo* in = find(inputs, in_name);
      if (!in) return invalid_argument("state map: unknown input '", in_name, "': the model's inputs are ", names_of(inputs));
      const ValueInfo* out = find(outputs, out_name);
      if (!out) {
        return invalid_argument("state map: unknown output '", out_name, "': the model's outputs are ", names_of(outputs));
      }
      RETURN_IF_ERROR(check_pair(*in, *out));
      pairs.push_back({in_name, out_name});
    }
    return pairs;
  }
  std::set<std::string> used_outputs;
  for (const auto& in : inputs) {
    std::set<std::string> in_stems = stems(in.name);
    std::vector<const ValueInfo*> matches;
    for (const auto& out : outputs) {
      if (out.name == in.name) continue;
      std::set<std::string> out_stems = stems(out.name);
      bool same_stem = std::any_of(in_stems.begin(), in_stems.end(), [&](const std::string& s) { return out_stems.count(s); });
      if (same_stem && in.dtype == out.dtype && shapes_compatible(in.shape, out.shape)) matches.push_back(&out);
    }
    if (matches.empty()) continue;
    if (matches.size() > 1 || used_outputs.count(matches[0]->name)) {
      return invalid_argument("state input '", in.name, "': more than one output could carry its next value (",
                              names_of(outputs), "); give the mapping explicitly (state_map)");
    }
    used_outputs.insert(matches[0]->name);
    pairs.push_back({in.name, matches[0]->name});
  }
  return pairs;
}

}  // namespace pyflame_rt
