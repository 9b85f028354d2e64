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
TEST(CslGolden, MultiHeadAttention) { expect_golden(test::mha_plan()); }
TEST(CslGolden, Gru) { expect_golden(test::gru_plan()); }

TEST(CslGenerator, SamePlanSameBytes) {
  for (const auto& spec : {test::gemv_plan(), test::conv_plan(), test::eltwise_plan(), test::summa_plan(),
                           test::depthwise_plan(), test::im2col_plan(), test::mha_plan(), test::gru_plan()}) {
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

TEST(CslGenerator, AttentionStreamsQueriesAlongRowsOverResidentKeys) {
  CslPartitionOutput out = generate(test::mha_plan());
  const std::string& pe = out.files.at("pe_program.csl");
  const std::string& py = out.files.at("run.py");
  // 2 heads down 2 rows, 5 keys across 3 columns (2 each), 4 query rows per launch.
  EXPECT_NE(pe.find("var op0_kt = @zeros([if (op0_on) 8 else 1]f32);"), std::string::npos);
  EXPECT_NE(pe.find("var op0_y = @zeros([if (op0_root) 20 else 1]f32);"), std::string::npos);
  EXPECT_NE(pe.find("  summa_init();\n  op0_stage = 0;\n  mpi_x.broadcast(0, @ptrcast([*]u32, &op0_q), 16, t_coll);"),
            std::string::npos);
  EXPECT_NE(pe.find("@fmacs(srow, srow, kcol, op0_q[row * 4 + d]);"), std::string::npos);
  EXPECT_NE(pe.find("mpi_x.gather(2, @ptrcast([*]u32, &op0_m), @ptrcast([*]u32, &op0_mg), 4, t_coll);"), std::string::npos);
  EXPECT_NE(pe.find("mpi_x.reduce_fadds(2, @ptrcast([*]f32, &op0_acc), @ptrcast([*]f32, &op0_y), 20, t_coll);"),
            std::string::npos);
  EXPECT_NE(pe.find("@bind_local_task(t_coll_task, t_coll);"), std::string::npos);
  EXPECT_EQ(pe.find("t_summa"), std::string::npos) << "SUMMA's tasks without a SUMMA op";
  EXPECT_NE(py.find("for c in range(2):"), std::string::npos);
  EXPECT_NE(py.find("h2d(runner, sym['op0_q'], q_op0[c], 0, 0, 1, 2, 16)"), std::string::npos);
  EXPECT_EQ(out.check.colors, 4);  // the library's 4
}

TEST(CslGenerator, GruRunsItsStepsOnTasksInOneLaunch) {
  CslPartitionOutput out = generate(test::gru_plan());
  const std::string& pe = out.files.at("pe_program.csl");
  const std::string& py = out.files.at("run.py");
  EXPECT_NE(pe.find("mpi_x.reduce_fadds(1, @ptrcast([*]f32, &op0_acc), @ptrcast([*]f32, &op0_red), 24, t_coll);"),
            std::string::npos);
  EXPECT_NE(pe.find("mpi_y.gather(0, @ptrcast([*]u32, &op0_hn), @ptrcast([*]u32, &op0_hg), 4, t_coll);"), std::string::npos);
  EXPECT_NE(pe.find("mpi_y.broadcast(0, @ptrcast([*]u32, &op0_h), 8, t_coll);"), std::string::npos);
  EXPECT_NE(pe.find("if (op0_step < 4) {\n      op0_gemv();"), std::string::npos);
  // One launch for all 4 steps; W, R and the bias once, as weights.
  EXPECT_EQ(py.find("for c in range"), std::string::npos);
  EXPECT_EQ(py.find("runner.launch('op0'"), py.rfind("runner.launch('op0'"));
  EXPECT_NE(py.find("WEIGHTS = ['W', 'R', 'B']"), std::string::npos);
  EXPECT_NE(py.find("OUTPUTS = ['Y', 'Y_h']"), std::string::npos);
}

TEST(CslGenerator, GruFormsItDoesNotLowerAreNamed) {
  CslPartitionSpec p = test::gru_plan();
  p.ops[0].ints["linear_before_reset"] = {0};
  auto out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(out.status().message().find("linear_before_reset = 0"), std::string::npos) << out.status().message();
  p = test::gru_plan();
  p.ops[0].ints["layout"] = {1};
  out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("layout = 1"), std::string::npos) << out.status().message();
  p = test::gru_plan();
  p.ops[0].region = {0, 0, 1, 2};
  out = generate_partition(p, CslBudget());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("needs the whole 2x2 rectangle"), std::string::npos) << out.status().message();
}

TEST(CslGenerator, MatMulOfTwoActivationsCopiesBPerLaunch) {
  CslPartitionSpec p = test::gemv_plan();
  p.ops[0].op_type = "MatMul";
  p.ops[0].trans_b = false;
  p.ops[0].inputs = {{"x", {1, 64}, false, ""}, {"Bm", {64, 32}, false, ""}};
  CslPartitionOutput out = generate(p);
  EXPECT_EQ(out.program.ops.at(0).lowering, "gemv");
  const std::string& py = out.files.at("run.py");
  EXPECT_NE(py.find("WEIGHTS = []"), std::string::npos);
  EXPECT_NE(py.find("INPUTS = ['x', 'Bm']"), std::string::npos) << py;
  // B's tiles go in next to the rows, after the weights section, before the launch.
  const size_t b = py.find("h2d(runner, sym['op0_w'], np.tile(pad(t['Bm']");
  ASSERT_NE(b, std::string::npos) << py;
  EXPECT_GT(b, py.find("# op0: MatMul"));
  EXPECT_LT(b, py.find("runner.launch('op0'"));
}

TEST(CslGenerator, SliceRunsOnTheHost) {
  CslPartitionSpec p = test::eltwise_plan();
  p.ops.resize(1);
  CslOpSpec& s = p.ops.emplace_back();
  s.node = "cut";
  s.op_type = "Slice";
  s.region = {0, 0, 4, 1};
  s.inputs = {{"a", {2, 50}, false, ""}};
  s.output = {"cut_out", {2, 10}, false, ""};
  s.ints["starts"] = {5};
  s.ints["ends"] = {9223372036854775807};
  s.ints["axes"] = {-1};
  s.ints["steps"] = {4};
  CslPartitionOutput out = generate(p);
  EXPECT_NE(out.files.at("run.py").find("t['cut_out'] = np.ascontiguousarray(np.asarray(t['a'])[:, 5:9223372036854775807:4], dtype=np.float32)"),
            std::string::npos)
      << out.files.at("run.py");
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

TEST(CslCheckerCollectives, OpCallingTheLibraryMustSpanTheRectangle) {
  CslBudget budget;
  auto prog = build_program(test::gru_plan(), budget);
  ASSERT_TRUE(prog.ok()) << prog.status().to_string();
  auto files = render_program(*prog);
  ASSERT_TRUE(check_program(*prog, budget, files).errors.empty());
  prog->ops[0].region = {0, 0, 1, 2};
  prog->library_routed.clear();
  const std::string init = "summa_init();";
  prog->ops[0].functions.replace(prog->ops[0].functions.find(init), init.size(), "");
  std::string errs;
  for (const auto& e : check_program(*prog, budget, files).errors) errs += e + "\n";
  EXPECT_NE(errs.find("op0 (GRU 'rnn') calls <collectives_2d> on PEs [0,0,1,2], not the whole 2x2 rectangle"),
            std::string::npos) << errs;
  EXPECT_NE(errs.find("op0 (GRU 'rnn') calls <collectives_2d>, which the partition does not set up"), std::string::npos)
      << errs;
  EXPECT_NE(errs.find("op0 (GRU 'rnn') calls <collectives_2d> without initialising it (summa_init)"), std::string::npos)
      << errs;
  // A collective whose callback task is not bound.
  std::string& pe = files["pe_program.csl"];
  const std::string bind = "@bind_local_task(t_coll_task, t_coll);";
  pe.replace(pe.find(bind), bind.size(), "");
  errs.clear();
  for (const auto& e : check_program(*prog, budget, files).errors) errs += e + "\n";
  EXPECT_NE(errs.find("task id 't_coll' is activated but no task is bound to it"), std::string::npos) << errs;
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
