#include "compiler/passes/einsum_to_matmul.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace pyflame_rt {

namespace {

// The equation's terms without spaces: {a, b, out}; false unless two inputs and an explicit output.
bool parse(const std::string& equation, std::string* a, std::string* b, std::string* out) {
  std::string e;
  for (char c : equation) if (!std::isspace(static_cast<unsigned char>(c))) e += c;
  size_t comma = e.find(','), arrow = e.find("->");
  if (comma == std::string::npos || arrow == std::string::npos || arrow < comma) return false;
  *a = e.substr(0, comma);
  *b = e.substr(comma + 1, arrow - comma - 1);
  *out = e.substr(arrow + 2);
  auto letters = [](const std::string& t) {
    std::set<char> seen(t.begin(), t.end());
    return !t.empty() && seen.size() == t.size() && std::all_of(t.begin(), t.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c));
    });
  };
  return letters(*a) && letters(*b) && letters(*out);
}

}  // namespace

Status EinsumToMatMul::run(Graph& graph, bool& changed) {
  std::vector<Node> rewritten;
  rewritten.reserve(graph.nodes.size());
  for (auto& n : graph.nodes) {
    std::string a, b, out;
    // Two operands given (an empty name is an absent operand: the reference kernel names it).
    if (!n.domain.empty() || n.op_type != "Einsum" || n.inputs.size() != 2 || n.outputs.size() != 1 ||
        n.inputs[0].empty() || n.inputs[1].empty() ||
        !parse(n.attr_string("equation", ""), &a, &b, &out) || a.size() < 2 || a.size() != b.size() ||
        a.size() != out.size()) {
      rewritten.push_back(std::move(n));
      continue;
    }
    const size_t r = a.size();
    const std::string batch = a.substr(0, r - 2);
    const char i = a[r - 2], k = a[r - 1];
    bool same_batch = b.substr(0, r - 2) == batch && out.substr(0, r - 2) == batch;
    bool plain = b[r - 2] == k && out[r - 2] == i && out[r - 1] == b[r - 1];        // ...ik,...kj->...ij
    bool transposed = b[r - 1] == k && out[r - 2] == i && out[r - 1] == b[r - 2];   // ...ik,...jk->...ij
    if (!same_batch || (!plain && !transposed) || i == k) {
      rewritten.push_back(std::move(n));
      continue;
    }
    std::string rhs = n.inputs[1];
    if (transposed) {
      Node t;
      t.op_type = "Transpose";
      t.name = n.name + "_transpose_b";
      rhs = n.outputs[0] + "_rhs_t";
      t.inputs = {n.inputs[1]};
      t.outputs = {rhs};
      std::vector<int64_t> perm;
      for (size_t d = 0; d < r; ++d) perm.push_back(static_cast<int64_t>(d));
      std::swap(perm[r - 2], perm[r - 1]);
      t.attributes["perm"] = Attribute::make_ints(perm);
      rewritten.push_back(std::move(t));  // before the MatMul that reads it: order kept
    }
    Node mm;
    mm.op_type = "MatMul";
    mm.name = n.name;
    mm.inputs = {n.inputs[0], rhs};
    mm.outputs = n.outputs;
    rewritten.push_back(std::move(mm));
    changed = true;
  }
  graph.nodes = std::move(rewritten);
  return Status::OK();
}

}  // namespace pyflame_rt
