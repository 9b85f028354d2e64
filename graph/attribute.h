// Node attributes: the ONNX attribute kinds (scalars, lists, tensors, subgraphs).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {

class Graph;

enum class AttrKind { kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings, kTensors, kGraphs };
const char* attr_kind_name(AttrKind k);

struct Attribute {
  AttrKind kind = AttrKind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;

  static Attribute make_float(float v) { Attribute a; a.kind = AttrKind::kFloat; a.f = v; return a; }
  static Attribute make_int(int64_t v) { Attribute a; a.kind = AttrKind::kInt; a.i = v; return a; }
  static Attribute make_string(std::string v) { Attribute a; a.kind = AttrKind::kString; a.s = std::move(v); return a; }
  static Attribute make_ints(std::vector<int64_t> v) { Attribute a; a.kind = AttrKind::kInts; a.ints = std::move(v); return a; }
  static Attribute make_floats(std::vector<float> v) { Attribute a; a.kind = AttrKind::kFloats; a.floats = std::move(v); return a; }
  static Attribute make_tensor(Tensor v) { Attribute a; a.kind = AttrKind::kTensor; a.t = std::move(v); return a; }
  static Attribute make_graph(std::shared_ptr<Graph> v) { Attribute a; a.kind = AttrKind::kGraph; a.g = std::move(v); return a; }
};

}  // namespace pyflame_rt
