#include "compiler/passes/einsum_to_matmul.h"

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "ref_compare_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

Graph einsum(const std::string& equation, Dims a, Dims b) {
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {f32("a", a), f32("b", b)};
  g.add_node("Einsum", {"a", "b"}, {"y"}, "e").attributes["equation"] = Attribute::make_string(equation);
  g.outputs = {{"y", DType::kFloat32, Shape::unknown_rank()}};
  return g;
}

void expect_same(const Graph& before, const Graph& after, const Dims& a, const Dims& b) {
  expect_same_outputs(before, after, {Value(random_tensor(a, 1)), Value(random_tensor(b, 2))});
}

TEST(EinsumToMatMulTest, MaxVitAttentionEquations) {
  struct C { std::string eq; Dims a, b; std::string ir; };
  const std::vector<C> cases = {
      {"B G H I D, B G H J D -> B G H I J", {1, 2, 3, 4, 5}, {1, 2, 3, 6, 5},
       "  %y_rhs_t = Transpose(%b) {perm=[0,1,2,4,3]}\n  %y = MatMul(%a, %y_rhs_t)\n"},
      {"BGHIJ,BGHJD->BGHID", {1, 2, 3, 4, 6}, {1, 2, 3, 6, 5}, "  %y = MatMul(%a, %b)\n"},
  };
  for (const auto& c : cases) {
    Graph before = einsum(c.eq, c.a, c.b), after = before;
    EinsumToMatMul pass;
    bool changed = false;
    std::string ir = run_pass(pass, after, &changed);
    EXPECT_TRUE(changed) << c.eq;
    EXPECT_NE(ir.find(c.ir), std::string::npos) << ir;
    EXPECT_TRUE(after.check_sorted().ok());
    expect_same(before, after, c.a, c.b);
  }
}

TEST(EinsumToMatMulTest, OtherEquationsStay) {
  for (const char* eq : {"ij,jk", "bij,bjk->bik,", "bij,cjk->bik", "ij,ij->ij", "bji,bjk->bik"}) {
    Graph g = einsum(eq, {2, 3, 3}, {2, 3, 3});
    EinsumToMatMul pass;
    bool changed = true;
    run_pass(pass, g, &changed);
    EXPECT_FALSE(changed) << eq;
    EXPECT_EQ(g.nodes[0].op_type, "Einsum") << eq;
  }
}

}  // namespace
}  // namespace pyflame_rt
