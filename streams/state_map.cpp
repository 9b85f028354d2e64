#include "streams/state_map.h"

#include <algorithm>
#include <cctype>
#include <map>
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

// When names do not tell (torch names a second output "output1"): a state input is paired with
// the one output of the same dtype and exactly the same shape. The first input and the first
// output are the data path by convention of exported recurrent models (input, h0) ->
// (output, hn), so they are never paired this way; neither are values whose shape has unknown
// dims (a chunk's length). More than one candidate either way is an error listing the pairs
// considered.
Status pair_by_shape(const std::vector<ValueInfo>& inputs, const std::vector<ValueInfo>& outputs,
                     std::set<std::string>& used_outputs, const std::set<std::string>& paired_inputs,
                     std::vector<StatePair>& pairs) {
  auto same_shape = [](const ValueInfo& a, const ValueInfo& b) {
    return a.dtype == b.dtype && a.shape.rank_known && a.shape.fully_known() && a.shape == b.shape;
  };
  std::vector<std::pair<const ValueInfo*, std::vector<const ValueInfo*>>> candidates;
  for (size_t i = 1; i < inputs.size(); ++i) {
    const ValueInfo& in = inputs[i];
    if (paired_inputs.count(in.name)) continue;
    std::vector<const ValueInfo*> outs;
    for (size_t k = 1; k < outputs.size(); ++k) {
      if (!used_outputs.count(outputs[k].name) && same_shape(in, outputs[k])) outs.push_back(&outputs[k]);
    }
    if (!outs.empty()) candidates.emplace_back(&in, std::move(outs));
  }
  std::map<std::string, int> claims;
  for (const auto& c : candidates) for (const ValueInfo* o : c.second) ++claims[o->name];
  std::string considered;
  bool ambiguous = false;
  for (const auto& c : candidates) {
    for (const ValueInfo* o : c.second) {
      considered += (considered.empty() ? "'" : ", '") + c.first->name + "' <- '" + o->name + "'";
      ambiguous |= c.second.size() > 1 || claims[o->name] > 1;
    }
  }
  if (ambiguous) {
    return invalid_argument("state inputs: names pair none of them and more than one output has the shape of a ",
                            "state input; pairs considered by dtype and shape: ", considered,
                            "; give the mapping explicitly (state_map)");
  }
  for (const auto& c : candidates) {
    used_outputs.insert(c.second[0]->name);
    pairs.push_back({c.first->name, c.second[0]->name});
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
  std::set<std::string> used_outputs, paired_inputs;
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
      std::string considered;
      for (const ValueInfo* m : matches) considered += (considered.empty() ? "'" : ", '") + in.name + "' <- '" + m->name + "'";
      if (matches.size() == 1) considered += " (its output already feeds another state input)";
      return invalid_argument("state input '", in.name, "': more than one output could carry its next value; pairs ",
                              "considered by name: ", considered, "; give the mapping explicitly (state_map)");
    }
    used_outputs.insert(matches[0]->name);
    paired_inputs.insert(in.name);
    pairs.push_back({in.name, matches[0]->name});
  }
  RETURN_IF_ERROR(pair_by_shape(inputs, outputs, used_outputs, paired_inputs, pairs));
  return pairs;
}

}  // namespace pyflame_rt
