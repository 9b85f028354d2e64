// The CSL generator on small plans: golden files (byte for byte), determinism, the structural
// checker on every generated program, and the checker catching broken programs.
//
// Regenerate the golden files after an intended change of the generated code:
//   PFRT_UPDATE_GOLDEN=1 ./build/bin/compiler_tests --gtest_filter='CslGolden*'
// then review `git diff tests/compiler/csl/golden` like any other change.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/csl/csl_generator.h"
#include "csl_test_plans.h"

namespace pyflame_rt::csl {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CslPartitionOutput generate(const CslPartitionSpec& spec) {
  CslBudget budget;
  auto out = generate_partition(spec, budget);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? std::move(out).value() : CslPartitionOutput{};
}

void expect_golden(const CslPartitionSpec& spec) {
  CslPartitionOutput out = generate(spec);
  ASSERT_EQ(out.files.size(), 4u);
  const fs::path dir = fs::path(PFRT_CSL_GOLDEN_DIR) / spec.name;
  if (std::getenv("PFRT_UPDATE_GOLDEN")) {
    ASSERT_TRUE(write_partition(out, PFRT_CSL_GOLDEN_DIR).ok());
  }
  for (const auto& [name, text] : out.files) {
    ASSERT_TRUE(fs::exists(dir / name)) << (dir / name) << " is missing: regenerate with PFRT_UPDATE_GOLDEN=1";
    EXPECT_EQ(text, read_text(dir / name)) << spec.name << "/" << name << " differs from its golden file";
  }
}

TEST(CslGolden, Gemv) { expect_golden(test::gemv_plan()); }
TEST(CslGolden, ConvPool) { expect_golden(test::conv_plan()); }
TEST(CslGolden, EltwiseChain) { expect_golden(test::eltwise_plan()); }
TEST(CslGolden, Summa) { expect_golden(test::summa_plan()); }
TEST(CslGolden, DepthwiseInBlocks) { expect_golden(test::depthwise_plan()); }
TEST(CslGolden, Im2colReplicasInChunks) { expect_golden(test::im2col_plan()); }

TEST(CslGenerator, SamePlanSameBytes) {
  for (const auto& spec : {test::gemv_plan(), test::conv_plan(), test::eltwise_plan(), test::summa_plan(),
                           test::depthwise_plan(), test::im2col_plan()}) {
    EXPECT_EQ(generate(spec).files, generate(spec).files) << spec.name;
  }
}

TEST(CslGenerator, WritesAFolderPerPartition) {
  const fs::path dir = fs::temp_directory_path() / ("pfrt_csl_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  CslBudget budget;
  auto outs = generate_csl({test::gemv_plan(), test::eltwise_plan()}, budget, dir.string());
  ASSERT_TRUE(outs.ok()) << outs.status().to_string();
  for (const char* part : {"gemv", "eltwise"}) {
    for (const char* f : {"layout.csl", "pe_program.csl", "run.py", "compile.sh"}) {
      EXPECT_TRUE(fs::exists(dir / part / f)) << part << "/" << f;
    }
  }
  EXPECT_NE(fs::status(dir / "gemv" / "compile.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(read_text(dir / "gemv" / "layout.csl"), (*outs)[0].files.at("layout.csl"));
  fs::remove_all(dir);
}

TEST(CslGenerator, GemvFollowsThePublicPattern) {
  CslPartitionOutput out = generate(test::gemv_plan());
  const std::string& pe = out.files.at("pe_program.csl");
  const std::string& layout = out.files.at("layout.csl");
  // 64 inputs over 4 columns, 32 outputs over 2 rows: a 16 x 16 tile per PE.
  EXPECT_NE(pe.find("var op0_w = @zeros([if (op0_on) 256 else 1]f32);"), std::string::npos);
  EXPECT_NE(pe.find("@fmacs(yrow, yrow, wcol, xv);"), std::string::npos);
  // x flows SOUTH from the top row; sums go EAST on alternating colours.
  EXPECT_NE(layout.find("if (y == 0) {\n        @set_color_config(x, y, c0, .{ .routes = .{ .rx = .{RAMP}, .tx = .{RAMP, SOUTH} } });"),
            std::string::npos);
  EXPECT_NE(layout.find("if (x % 2 == 0) {\n        @set_color_config(x, y, c1, .{ .routes = .{ .rx = .{RAMP}, .tx = .{EAST} } });"),
            std::string::npos);
  EXPECT_NE(layout.find("if (x % 2 == 1) {\n        @set_color_config(x, y, c1, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP} } });"),
            std::string::npos);
  // WSE-3: the data task comes from the input queue bound to the x colour.
  EXPECT_NE(pe.find("else if (@is_arch(\"wse3\")) @get_data_task_id(iq_c0);"), std::string::npos);
  EXPECT_NE(pe.find("@initialize_queue(iq_c0, .{ .color = c0 });"), std::string::npos);
  EXPECT_NE(out.files.at("compile.sh").find("cslc layout.csl --arch=wse3 --fabric-dims=\"$FABRIC\" --fabric-offsets=4,1"),
            std::string::npos);
  EXPECT_NE(out.files.at("run.py").find("runner.launch('op0', nonblock=False)"), std::string::npos);
  EXPECT_EQ(out.check.colors, 3);
  // 256 + 16 (x, top row) + 16 (y) + 16 (bias, left column) floats + the code reserve.
  EXPECT_EQ(out.check.sram_bytes_max, 4 * (256 + 16 + 16 + 16) + CslBudget().code_reserve_bytes);
}

TEST(CslGenerator, DepthwiseSplitsGroupsIntoBlocks) {
  CslPartitionOutput out = generate(test::depthwise_plan());
  // 2 blocks of 4 x 8 PEs, 192 channels each: 4 x 2 output tiles with a 6 x 4 input halo tile.
  EXPECT_NE(out.files.at("pe_program.csl").find("on 2 x 1 channel block(s) of 4 x 8 PEs: output tile 192 x 2 x 4"),
            std::string::npos);
  EXPECT_LE(out.check.sram_bytes_max, 48 * 1024);
  EXPECT_NE(out.files.at("pe_program.csl").find("@fmins(all, all, 6.0);"), std::string::npos);
}

// A GEMV that streams its rows in chunks leaves room for the ops after it: 256 rows through a
// 64 x 64 weight on 4 PEs, then a Relu over the 256 x 64 result needing 32 KB per PE.
TEST(CslGenerator, RowChunksShrinkUntilLaterOpsFit) {
  CslPartitionSpec p;
  p.name = "chunks";
  p.width = 4;
  p.height = 1;
  CslOpSpec& fc = p.ops.emplace_back();
  fc.node = "fc";
  fc.op_type = "MatMul";
  fc.region = {0, 0, 4, 1};
  fc.inputs = {{"x", {256, 64}, false, ""}, {"W", {64, 64}, true, ""}};
  fc.output = {"h", {256, 64}, false, ""};
  CslOpSpec& relu = p.ops.emplace_back();
  relu.node = "relu";
  relu.op_type = "Relu";
  relu.region = {0, 0, 4, 1};
  relu.inputs = {{"h", {256, 64}, false, ""}};
  relu.output = {"y", {256, 64}, false, ""};
  CslPartitionOutput out = generate(p);
  EXPECT_LE(out.check.sram_bytes_max, 48 * 1024);
  ASSERT_EQ(out.program.ops.size(), 2u);
  EXPECT_GT(out.program.ops[0].chunks, 1);
  EXPECT_NE(out.files.at("run.py").find("for c in range(" + std::to_string(out.program.ops[0].chunks) + "):"),
            std::string::npos);
}

TEST(CslGenerator, EltwiseChainStaysInSram) {
  CslPartitionOutput out = generate(test::eltwise_plan());
  const std::string& py = out.files.at("run.py");
  // Relu reads Add's output array in place, Sigmoid Relu's: one activation in, one out.
  EXPECT_NE(out.files.at("pe_program.csl").find("@fmaxs(op1_y_dsd, op1_a_dsd, 0.0);"), std::string::npos);
  EXPECT_NE(out.files.at("pe_program.csl").find("-> op0_y[i]"), std::string::npos);
  EXPECT_EQ(py.find("sym['op0_y']"), std::string::npos) << "Add's output goes back to the host";
  EXPECT_NE(py.find("OUTPUTS = ['s']"), std::string::npos);
  EXPECT_NE(py.find("INPUTS = ['x']"), std::string::npos);
}

TEST(CslGenerator, ConvTooLargeForOutputStationaryUsesIm2col) {
  CslPartitionSpec p = test::conv_plan();
  p.ops.resize(1);
  p.width = 8;
  p.height = 4;
  CslOpSpec& c = p.ops[0];
  c.region = {0, 0, 8, 4};
  c.inputs = {{"image", {1, 64, 8, 8}, false, ""}, {"conv1.w", {64, 64, 3, 3}, true, ""}};
  c.output = {"c1", {1, 64, 8, 8}, false, ""};
  CslPartitionOutput out = generate(p);
  ASSERT_EQ(out.program.ops.size(), 1u);
  EXPECT_EQ(out.program.ops[0].lowering, "conv_im2col");
  EXPECT_NE(out.files.at("run.py").find("im2col(t['image'], 3, 3, 1, 1, 1, 1, 1, 1, 8, 8)"), std::string::npos);
}

TEST(CslGenerator, TooLargeForSramIsAnErrorWithTheNumbers) {
  CslPartitionSpec p = test::gemv_plan();
  p.width = p.height = 1;
  p.ops[0].region = {0, 0, 1, 1};
  p.ops[0].inputs[1].shape = {256, 64};
  p.ops[0].inputs[2].shape = {256};
  p.ops[0].output.shape = {1, 256};
  auto out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("PE (0, 0) needs"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("op0_w 65536"), std::string::npos) << out.status().message();
}

TEST(CslGenerator, UnknownOpIsNotImplemented) {
  CslPartitionSpec p = test::eltwise_plan();
  p.ops[1].op_type = "Loop";
  auto out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(out.status().message().find("partition eltwise: Loop 'relu': op Loop has no CSL lowering"), std::string::npos)
      << out.status().message();
}

TEST(CslGenerator, OpOutsideTheRectangleIsRejected) {
  CslPartitionSpec p = test::gemv_plan();
  p.ops[0].region = {2, 0, 4, 2};
  auto out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("outside the 4x2 rectangle"), std::string::npos) << out.status().message();
}

// The checker must fail programs that are broken, in the model and in the text.
class CslChecker : public ::testing::Test {
 protected:
  void SetUp() override {
    auto prog = build_program(test::gemv_plan(), budget_);
    ASSERT_TRUE(prog.ok()) << prog.status().to_string();
    prog_ = std::move(prog).value();
    files_ = render_program(prog_);
    ASSERT_TRUE(check_program(prog_, budget_, files_).errors.empty());
  }
  std::string errors() const {
    std::string s;
    for (const auto& e : check_program(prog_, budget_, files_).errors) s += e + "\n";
    return s;
  }
  CslBudget budget_;
  CslProgram prog_;
  std::map<std::string, std::string> files_;
};

TEST_F(CslChecker, UnroutedColour) {
  prog_.routes.erase(prog_.routes.begin());  // the top row's x route
  files_ = render_program(prog_);
  EXPECT_NE(errors().find("op0 sends on colour 0 at PE (0, 0) where it is not routed"), std::string::npos) << errors();
}

TEST_F(CslChecker, RouteWithoutRamp) {
  for (RouteRule& r : prog_.routes) {
    if (r.color == 0) r.tx = {Dir::kSouth};
  }
  EXPECT_NE(errors().find("op0 receives on colour 0 at PE (0, 0) where it is routed without tx RAMP"), std::string::npos)
      << errors();
}

TEST_F(CslChecker, TwoRoutesForOneColour) {
  prog_.routes.push_back(prog_.routes.front());
  prog_.routes.back().pes = {0, 0, 1, 1};
  EXPECT_NE(errors().find("PE (0, 0) has two routes for colour 0"), std::string::npos) << errors();
}

TEST_F(CslChecker, ExportWithoutSymbol) {
  std::string& pe = files_["pe_program.csl"];
  pe.replace(pe.find("@export_symbol(op0_w_ptr, \"op0_w\");"), 36, "");
  EXPECT_NE(errors().find("layout.csl exports 'op0_w' but pe_program.csl has no such symbol"), std::string::npos) << errors();
}

TEST_F(CslChecker, UnboundTask) {
  std::string& pe = files_["pe_program.csl"];
  const std::string bind = "@bind_local_task(t_step_task, t_step);";
  pe.replace(pe.find(bind), bind.size(), "");
  EXPECT_NE(errors().find("task 't_step_task' is never bound"), std::string::npos) << errors();
  EXPECT_NE(errors().find("task id 't_step' is activated but no task is bound to it"), std::string::npos) << errors();
}

TEST_F(CslChecker, TooManyColours) {
  prog_.colors.push_back(budget_.program_colors());
  prog_.routes.push_back({PeSet{0, 0, 1, 1}, budget_.program_colors(), {Dir::kRamp}, {Dir::kEast}});
  EXPECT_NE(errors().find("colour 18 is outside the program's ids 0..17"), std::string::npos) << errors();
}

TEST_F(CslChecker, LaunchOfAnUnexportedFunction) {
  files_["run.py"] += "\nrunner.launch('op7', nonblock=False)\n";
  EXPECT_NE(errors().find("run.py launches 'op7', which layout.csl does not export"), std::string::npos) << errors();
}

TEST(CslPeClasses, CountEveryPeOnce) {
  auto prog = build_program(test::gemv_plan(), CslBudget());
  ASSERT_TRUE(prog.ok());
  prog->width = 751;  // an odd width: the parity split must still count every PE once
  prog->height = 994;
  int64_t n = 0;
  for_each_pe_class(*prog, [&](int, int, int64_t count) { n += count; });
  EXPECT_EQ(n, 751 * 994);
}

}  // namespace
}  // namespace pyflame_rt::csl
