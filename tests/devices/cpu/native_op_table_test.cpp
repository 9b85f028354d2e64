// NativeOpTable (devices/cpu/native_op_table.h): every entry, at the ends of its opset range
// and in each dtype it lists, builds the native kernel (CpuProgram::node_kernels() says
// "native"); a node outside the range or with an unlisted dtype runs on the reference kernel
// and get_fallback_nodes() gives the reason; the CPU device's why_not() agrees with the table.
#include <gtest/gtest.h>

#include <algorithm>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/native_op_table.h"
#include "devices/ref/ref_device.h"

namespace pyflame_rt {
namespace {

using cpu::NativeOpEntry;
using cpu::NativeOpTable;

Tensor scalar(DType t, double v) {
  Tensor s(t, {});
  if (t == DType::kFloat32) s.data<float>()[0] = static_cast<float>(v);
  if (t == DType::kUInt8) s.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  if (t == DType::kInt8) s.data<int8_t>()[0] = static_cast<int8_t>(v);
  return s;
}

Tensor filled(DType t, Dims dims) {
  Tensor x(t, dims);  // zero-filled: enough for building kernels
  if (t == DType::kFloat32) std::fill(x.data<float>(), x.data<float>() + x.numel(), 0.5f);
  return x;
}

// A one-node graph for `op` at `opset` whose input 0 has `dtype`, with the constant inputs and
// attributes the op's factory needs to take the node.
Graph one_node(const std::string& domain, const std::string& op, int64_t opset, DType dtype) {
  Graph g;
  g.opset_imports[""] = domain.empty() ? opset : 13;
  if (!domain.empty()) g.opset_imports[domain] = opset;
  Node n;
  n.domain = domain;
  n.op_type = op;
  n.name = "n";
  n.outputs = {"y"};
  Dims xd = {1, 8, 6, 6};
  auto input = [&](const std::string& name, DType t, Dims d) {
    g.inputs.push_back({name, t, Shape::from_dims(d)});
    n.inputs.push_back(name);
  };
  auto constant = [&](const std::string& name, Tensor t) {
    g.initializers[name] = std::move(t);
    n.inputs.push_back(name);
  };
  if (op == "Conv" || op == "FusedConv") {
    input("x", dtype, xd);
    constant("w", filled(DType::kFloat32, {4, 8, 3, 3}));
  } else if (op == "ConvTranspose") {
    input("x", dtype, xd);
    constant("w", filled(DType::kFloat32, {8, 4, 2, 2}));  // [C_in, C_out, k, k]
  } else if (op == "QLinearConv" || op == "QLinearConvAdd") {
    input("x", dtype, xd);
    constant("xs", scalar(DType::kFloat32, 0.1));
    constant("xz", scalar(DType::kUInt8, 128));
    constant("w", filled(DType::kInt8, {4, 8, 3, 3}));
    constant("ws", scalar(DType::kFloat32, 0.05));
    constant("wz", scalar(DType::kInt8, 0));
    constant("ys", scalar(DType::kFloat32, 0.2));
    constant("yz", scalar(DType::kUInt8, 128));
    if (op == "QLinearConvAdd") {
      n.inputs.insert(n.inputs.end(), {"", "", ""});  // no bias; inputs 9-10 unused
      input("z", DType::kUInt8, {1, 4, 4, 4});
      constant("zs", scalar(DType::kFloat32, 0.2));
      constant("zz", scalar(DType::kUInt8, 128));
    }
  } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    input("x", dtype, xd);
    constant("s", scalar(DType::kFloat32, 0.1));
    constant("z", scalar(DType::kUInt8, 128));
  } else if (op == "QLinearMatMul" || op == "QMatMul") {
    // a, a_scale, a_zero_point, b (int8 [K, N]), b_scale, b_zero_point, y_scale, y_zero_point
    input("a", dtype, {4, 8});
    constant("as", scalar(DType::kFloat32, 0.1));
    constant("az", scalar(dtype, 0));
    constant("b", filled(DType::kInt8, {8, 5}));
    constant("bs", scalar(DType::kFloat32, 0.05));
    constant("bz", scalar(DType::kInt8, 0));
    constant("ys", scalar(DType::kFloat32, 0.2));
    constant("yz", scalar(dtype, 0));
  } else if (op == "MatMulInteger") {
    input("a", dtype, {4, 8});
    constant("b", filled(DType::kInt8, {8, 5}));
  } else if (op == "Cast") {
    input("x", dtype, xd);
    n.attributes["to"] = Attribute::make_int(static_cast<int64_t>(DType::kFloat32));  // DType codes are ONNX's
  } else if (op == "CastLike") {
    input("x", dtype, xd);
    input("t", DType::kFloat32, {1});
  } else if (op == "InstanceNormalization") {
    input("x", dtype, xd);
    constant("scale", filled(DType::kFloat32, {8}));
    constant("b", filled(DType::kFloat32, {8}));
  } else if (op == "Reshape") {
    input("x", dtype, xd);
    constant("shape", Tensor::from_vector<int64_t>({2}, {0, -1}));
  } else if (op == "MatMul" || op == "Gemm" || op == "FusedMatMul") {
    input("a", dtype, {4, 8});
    constant("b", filled(DType::kFloat32, {8, 5}));
  } else if (op == "MultiHeadAttention") {
    for (const char* name : {"q", "k", "v"}) input(name, dtype, {1, 4, 8});
    n.attributes["num_heads"] = Attribute::make_int(2);
  } else if (op == "LayerNormalization") {
    input("x", dtype, {2, 8});
    constant("scale", filled(DType::kFloat32, {8}));
  } else if (op == "BatchNormalization") {
    input("x", dtype, xd);
    for (const char* name : {"scale", "b", "mean", "var"}) constant(name, filled(DType::kFloat32, {8}));
  } else if (op == "GRU") {
    input("x", dtype, {3, 1, 8});
    constant("w", filled(DType::kFloat32, {1, 12, 8}));
    constant("r", filled(DType::kFloat32, {1, 12, 4}));
    n.attributes["hidden_size"] = Attribute::make_int(4);
  } else if (op == "LSTM") {
    input("x", dtype, {3, 1, 8});
    constant("w", filled(DType::kFloat32, {1, 16, 8}));
    constant("r", filled(DType::kFloat32, {1, 16, 4}));
    n.attributes["hidden_size"] = Attribute::make_int(4);
  } else if (op == "RNN") {
    input("x", dtype, {3, 1, 8});
    constant("w", filled(DType::kFloat32, {1, 4, 8}));
    constant("r", filled(DType::kFloat32, {1, 4, 4}));
    n.attributes["hidden_size"] = Attribute::make_int(4);
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    input("a", dtype, xd);
    input("b", dtype, xd);
  } else if (op == "Where") {
    input("c", dtype, xd);
    input("a", DType::kFloat32, xd);
    input("b", DType::kFloat32, xd);
  } else if (op == "Split") {
    input("x", dtype, xd);
    n.outputs = {"y", "y2"};
  } else if (op == "SqueezeExcite") {
    input("x", dtype, xd);
    constant("w1", filled(DType::kFloat32, {2, 8, 1, 1}));
    constant("b1", filled(DType::kFloat32, {2}));
    constant("w2", filled(DType::kFloat32, {8, 2, 1, 1}));
    constant("b2", filled(DType::kFloat32, {8}));
  } else {
    input("x", dtype, xd);
  }
  g.nodes.push_back(n);
  for (const auto& out : n.outputs) g.outputs.push_back({out, DType::kUndefined, Shape::unknown_rank()});
  return g;
}

// "native" or "reference" for the graph's only node, once compiled on the CPU device (the
// build-time choice: no run).
std::string kernel_of(const Graph& g, std::vector<std::string>* fallbacks = nullptr) {
  auto exe = make_cpu_device(1)->compile(g);
  if (!exe.ok()) return "compile failed: " + exe.status().to_string();
  if (fallbacks) *fallbacks = (*exe)->fallback_nodes();
  std::vector<NodeKernel> k = (*exe)->node_kernels();
  return k.size() == 1 ? k[0].kernel : "node count " + std::to_string(k.size());
}

TEST(NativeOpTableTest, EveryEntryBuildsItsNativeKernelAcrossItsOpsetsAndDtypes) {
  const NativeOpTable& table = NativeOpTable::cpu();
  ASSERT_GT(table.entries().size(), 50u);
  for (const NativeOpEntry& e : table.entries()) {
    ASSERT_FALSE(e.dtypes.empty()) << e.op_type;
    ASSERT_NE(e.factory, nullptr) << e.op_type;
    // The ends of the range (an open range: its start and today's opset 18).
    std::vector<int64_t> opsets = {e.since, e.until == cpu::kNativeAnyOpset ? std::max<int64_t>(e.since, 18) : e.until};
    for (int64_t opset : opsets) {
      for (DType t : e.dtypes) {
        Graph g = one_node(e.domain, e.op_type, opset, t);
        EXPECT_EQ(kernel_of(g), "native") << e.domain << "." << e.op_type << " opset " << opset << " "
                                          << dtype_name(t);
      }
    }
  }
}

TEST(NativeOpTableTest, AnOpsetOutsideTheRangeRunsOnTheReferenceWithTheReason) {
  // Slice before opset 10 took starts/ends as attributes: not the native kernel's.
  Graph g = one_node("", "Slice", 9, DType::kFloat32);
  g.nodes[0].attributes["starts"] = Attribute::make_ints({0});
  g.nodes[0].attributes["ends"] = Attribute::make_ints({1});
  g.nodes[0].attributes["axes"] = Attribute::make_ints({1});
  std::vector<std::string> fallbacks;
  EXPECT_EQ(kernel_of(g, &fallbacks), "reference");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0], "Slice 'n': no native kernel for Slice opset 9 with float input (native: any fixed-width type, opsets 10+)");
  // And it runs there, equal to the reference device.
  Tensor x = filled(DType::kFloat32, {1, 8, 6, 6});
  auto cpu = make_cpu_device(1)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok());
  auto a = (*cpu)->run({Value(x)});
  auto b = (*ref)->run({Value(x)});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ((*a)[0].tensor.dims(), (Dims{1, 1, 6, 6}));
  const Tensor& ya = (*a)[0].tensor;
  const Tensor& yb = (*b)[0].tensor;
  ASSERT_EQ(ya.dims(), yb.dims());
  for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya.data<float>()[i], yb.data<float>()[i]);

  // Add before opset 7 broadcast by its `broadcast`/`axis` attributes.
  Graph add = one_node("", "Add", 6, DType::kFloat32);
  EXPECT_EQ(kernel_of(add, &fallbacks), "reference");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0],
            "Add 'n': no native kernel for Add opset 6 with float input (native: float, opsets 7+; double/int64/int32, "
            "opsets 7+)");
}

TEST(NativeOpTableTest, AnUnregisteredDtypeRunsOnTheReferenceWithTheReason) {
  std::vector<std::string> fallbacks;
  Graph g = one_node("", "Softmax", 13, DType::kFloat64);
  EXPECT_EQ(kernel_of(g, &fallbacks), "reference");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0],
            "Softmax 'n': no native kernel for Softmax opset 13 with double input (native: float, opsets 1+)");
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok());
  Tensor in(DType::kFloat64, {1, 8, 6, 6});
  auto out = (*cpu)->run({Value(in)});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_NEAR((*out)[0].tensor.data<double>()[0], 1.0 / 6.0, 1e-12);  // softmax of equal values over 6
  // int8 QLinearConv: only uint8 activations have the native kernel.
  Graph q = one_node("", "QLinearConv", 13, DType::kInt8);
  EXPECT_EQ(kernel_of(q, &fallbacks), "reference");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0],
            "QLinearConv 'n': no native kernel for QLinearConv opset 13 with int8 input (native: uint8, opsets 10+)");
  // An op with no native kernel at all.
  Graph hardmax = one_node("", "Hardmax", 13, DType::kFloat32);
  EXPECT_EQ(kernel_of(hardmax, &fallbacks), "reference");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0], "Hardmax 'n': no native kernel for Hardmax");
}

TEST(NativeOpTableTest, TheDeviceTakesWhatTheTableOrTheReferenceRuns) {
  std::unique_ptr<Device> dev = make_cpu_device(1);
  for (const NativeOpEntry& e : NativeOpTable::cpu().entries()) {
    Graph g = one_node(e.domain, e.op_type, e.since, e.dtypes[0]);
    EXPECT_EQ(dev->why_not(g, g.nodes[0]), "") << e.op_type;
  }
  // Neither a native nor a reference kernel: refused, with both reasons.
  Graph g = one_node("", "NoSuchOp", 13, DType::kFloat32);
  EXPECT_EQ(dev->why_not(g, g.nodes[0]),
            "op 'NoSuchOp' (opset 13) is not supported: no native kernel for NoSuchOp, and no reference kernel");
  // The capabilities list the native entries with their ranges.
  const auto& ops = dev->capabilities().ops;
  EXPECT_TRUE(std::any_of(ops.begin(), ops.end(), [](const OpSupport& s) {
    return s.op_type == "Slice" && s.since == 10 && s.domain.empty();
  }));
  EXPECT_TRUE(std::any_of(ops.begin(), ops.end(), [](const OpSupport& s) { return s.op_type == "Hardmax"; }));
}

TEST(NativeOpTableTest, FindOrdersByPriorityAndMatchesUnknownOpsetsAndDtypes) {
  NativeOpTable t;
  auto none = [](const Node&, int64_t, const Graph&) -> std::unique_ptr<cpu::NativeOp> { return nullptr; };
  t.add({"ai.onnx", "X", 1, 5, {DType::kFloat32}, none, 0});
  t.add({"", "X", 3, cpu::kNativeAnyOpset, {DType::kFloat32, DType::kInt64}, none, 5});
  auto found = t.find("", "X", 4, DType::kFloat32);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]->priority, 5);
  EXPECT_EQ(t.find("", "X", 6, DType::kFloat32).size(), 1u);
  EXPECT_EQ(t.find("", "X", 2, DType::kInt64).size(), 0u);
  EXPECT_EQ(t.find("", "X", 0, DType::kUndefined).size(), 2u);  // unknown: every entry may apply
  EXPECT_EQ(t.why_not("", "X", 2, DType::kInt64),
            "no native kernel for X opset 2 with int64 input (native: float, opsets 1-5; float/int64, opsets 3+)");
}

}  // namespace
}  // namespace pyflame_rt
