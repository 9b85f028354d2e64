// generate_partition / generate_csl (csl_generator.h).
#include "compiler/csl/csl_generator.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "compiler/csl/writers.h"

namespace pyflame_rt::csl {

namespace {

// Keeps an op's results on the wafer unless the host needs them: a partition output, or the
// input of a later op of this partition that is copied in (not read in place). Lists the
// tensors run.py reads and writes.
void plan_host_io(const CslPartitionSpec& spec, CslProgram& prog) {
  std::set<std::string> produced, host_read, read_anywhere;
  for (const CslOpSpec& op : spec.ops) {
    for (const CslTensor& t : op.inputs) read_anywhere.insert(t.name);
  }
  for (OpCode& op : prog.ops) {
    std::vector<std::string> reads = op.host_reads;
    for (const HostTransfer& t : op.before) reads.push_back(t.tensor);
    for (const std::string& r : reads) {
      host_read.insert(r);
      if (!produced.count(r)) prog.host_inputs.push_back(r);
    }
    for (const HostTransfer& t : op.after) produced.insert(t.tensor);
  }
  const std::set<std::string> outputs(spec.outputs.begin(), spec.outputs.end());
  for (OpCode& op : prog.ops) {
    std::vector<HostTransfer> keep;
    for (const HostTransfer& t : op.after) {
      const bool out = outputs.empty() ? !read_anywhere.count(t.tensor) : outputs.count(t.tensor) > 0;
      if (out || host_read.count(t.tensor)) keep.push_back(t);
      if (out) prog.host_outputs.push_back(t.tensor);
    }
    op.after = keep;
    if (keep.empty()) {  // nothing comes back: no assembly of the result either
      op.post.clear();
      std::vector<std::string> prep;
      for (const std::string& p : op.prep) {
        if (p.rfind("acc_", 0) != 0) prep.push_back(p);
      }
      op.prep = prep;
    }
  }
}

Status write_file(const std::filesystem::path& path, const std::string& text, bool executable) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return make_status(StatusCode::kNoSuchFile, "cannot write '", path.string(), "'");
  f << text;
  f.close();
  if (!f) return make_status(StatusCode::kNoSuchFile, "cannot write '", path.string(), "'");
  if (executable) {
    std::error_code ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec |
                                           std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add, ec);
  }
  return Status::OK();
}

}  // namespace

namespace {
Expected<CslProgram> build_program_with_share(const CslPartitionSpec& spec, const CslBudget& budget, double share);
}  // namespace

Expected<CslProgram> build_program(const CslPartitionSpec& spec, const CslBudget& budget) {
  return build_program_with_share(spec, budget, 1.0);
}

namespace {
Expected<CslProgram> build_program_with_share(const CslPartitionSpec& spec, const CslBudget& budget, double share) {
  if (spec.arch != "wse2" && spec.arch != "wse3") {
    return invalid_argument("partition ", spec.name, ": arch must be wse2 or wse3, got '", spec.arch, "'");
  }
  if (spec.width <= 0 || spec.height <= 0) {
    return invalid_argument("partition ", spec.name, ": empty rectangle ", spec.width, "x", spec.height);
  }
  CslProgram prog;
  prog.partition = spec.name;
  prog.arch = spec.arch;
  prog.width = spec.width;
  prog.height = spec.height;
  prog.wafer_x = spec.wafer_x;
  prog.wafer_y = spec.wafer_y;
  prog.fabric_w = spec.fabric_w;
  prog.fabric_h = spec.fabric_h;
  LowerContext ctx(prog, budget);
  ctx.chunk_share = share;
  for (const CslOpSpec& op : spec.ops) {
    Status st = lower_op(op, ctx);
    if (!st.ok()) return st.with_context("partition " + spec.name + ": ");
  }
  plan_host_io(spec, prog);
  RETURN_IF_ERROR(assign_tasks(prog, budget));
  return prog;
}
}  // namespace

std::map<std::string, std::string> render_program(const CslProgram& prog) {
  return {{"layout.csl", write_layout(prog)},
          {"pe_program.csl", write_pe_program(prog)},
          {"run.py", write_host_script(prog)},
          {"compile.sh", write_compile_script(prog)}};
}

Expected<CslPartitionOutput> generate_partition(const CslPartitionSpec& spec, const CslBudget& budget) {
  CslPartitionOutput out;
  out.name = spec.name;
  // Row-chunked ops first take all the SRAM they can; when later ops then do not fit, they
  // take a half, a quarter, ... of it (one row at least).
  for (double share = 1.0;; share /= 2) {
    ASSIGN_OR_RETURN(out.program, build_program_with_share(spec, budget, share));
    out.files = render_program(out.program);
    out.check = check_program(out.program, budget, out.files);
    if (out.check.sram_bytes_max <= budget.sram_bytes || share < 1.0 / 64) break;
  }
  if (!out.check.errors.empty()) {
    std::string msg = "generated CSL for partition " + spec.name + " fails " + std::to_string(out.check.errors.size()) +
                      " structural check(s):";
    for (const std::string& e : out.check.errors) msg += "\n  " + e;
    const bool memory = out.check.sram_bytes_max > budget.sram_bytes;
    return Status(memory ? StatusCode::kResourceExhausted : StatusCode::kFail, msg);
  }
  return out;
}

Status write_partition(const CslPartitionOutput& out, const std::string& dir) {
  const std::filesystem::path folder = std::filesystem::path(dir) / out.name;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return make_status(StatusCode::kNoSuchFile, "cannot create '", folder.string(), "': ", ec.message());
  for (const auto& [name, text] : out.files) {
    RETURN_IF_ERROR(write_file(folder / name, text, name == "compile.sh" || name == "run.py"));
  }
  return Status::OK();
}

Expected<std::vector<CslPartitionOutput>> generate_csl(const std::vector<CslPartitionSpec>& parts,
                                                       const CslBudget& budget, const std::string& dir) {
  std::vector<CslPartitionOutput> outs;
  for (const CslPartitionSpec& p : parts) {
    ASSIGN_OR_RETURN(CslPartitionOutput out, generate_partition(p, budget));
    outs.push_back(std::move(out));
  }
  if (!dir.empty()) {
    for (const CslPartitionOutput& out : outs) RETURN_IF_ERROR(write_partition(out, dir));
  }
  return outs;
}

}  // namespace pyflame_rt::csl
