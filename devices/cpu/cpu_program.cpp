#include "devices/cpu/cpu_program.h"

#include <omp.h>

#include <chrono>

#include "devices/thread_limit.h"

namespace pyflame_rt {
namespace cpu {

Expected<std::unique_ptr<CpuProgram>> CpuProgram::build(const Graph& graph, int num_threads) {
  std::unique_ptr<CpuProgram> p(new CpuProgram());
  p->graph_ = graph;
  p->num_threads_ = num_threads;
  RETURN_IF_ERROR(p->graph_.sort_topologically());
  RETURN_IF_ERROR(p->graph_.validate());
  const Graph& g = p->graph_;
  auto slot = [&](const std::string& name) {
    auto [it, inserted] = p->slot_of_.emplace(name, static_cast<int>(p->slot_count_));
    if (inserted) ++p->slot_count_;
    return it->second;
  };
  for (const auto& v : g.inputs) p->input_slots_.push_back(slot(v.name));
  for (const auto& kv : g.initializers) {
    if (!g.find_input(kv.first)) p->constants_.emplace_back(slot(kv.first), kv.second);
  }
  for (const auto& node : g.nodes) {
    Step step;
    step.node = &node;
    step.opset = g.opset(node.domain);
    step.native = make_native_op(node, step.opset, g);
    if (!step.native && !KernelRegistry::reference().find(node.domain, node.op_type)) {
      return not_implemented("op '", node.op_type, "' (domain '", node.domain.empty() ? "ai.onnx" : node.domain,
                             "', opset ", step.opset, ") used by node '", node.name, "' is not supported");
    }
    for (const auto& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : slot(in));
    for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : slot(out));
    p->steps_.push_back(std::move(step));
  }
  for (const auto& o : g.outputs) p->output_slots_.push_back(slot(o.name));
  std::vector<int> last_use(p->slot_count_, -1);
  for (size_t i = 0; i < p->steps_.size(); ++i) {
    for (int s : p->steps_[i].inputs) if (s >= 0) last_use[static_cast<size_t>(s)] = static_cast<int>(i);
  }
  for (int s : p->output_slots_) last_use[static_cast<size_t>(s)] = -2;
  for (size_t s = 0; s < last_use.size(); ++s) {
    if (last_use[s] >= 0) p->steps_[static_cast<size_t>(last_use[s])].release.push_back(static_cast<int>(s));
  }
  return p;
}

Expected<std::vector<Value>> CpuProgram::execute(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const {
  if (inputs.size() != input_slots_.size()) {
    return invalid_argument("graph expects ", input_slots_.size(), " inputs, got ", inputs.size());
  }
  // omp_set_num_threads is per calling thread and sticky: set it on every run, so a limit
  // that a previous run on this thread had does not leak into this one.
  static const int kDefaultThreads = omp_get_num_procs();  // num_threads 0: one per core
  int threads = num_threads_ > 0 ? num_threads_ : kDefaultThreads;
  if (int limit = IntraOpThreadLimit::current(); limit > 0 && limit < threads) threads = limit;
  omp_set_num_threads(threads);
  std::vector<CpuValue> slots(slot_count_);
  for (size_t i = 0; i < inputs.size(); ++i) slots[static_cast<size_t>(input_slots_[i])] = CpuValue::from_plain(std::move(inputs[i]));
  for (const auto& c : constants_) slots[static_cast<size_t>(c.first)] = CpuValue::from_plain(Value(c.second));
  std::vector<CpuValue*> in;
  auto run_start = std::chrono::steady_clock::now();
  for (const Step& step : steps_) {
    in.clear();
    for (int s : step.inputs) {
      CpuValue* v = s >= 0 ? &slots[static_cast<size_t>(s)] : nullptr;
      bool absent = !v || (!v->has_native && (!v->has_plain || v->plain.is_none()));
      in.push_back(absent ? nullptr : v);
    }
    std::vector<CpuValue> out(step.outputs.size());
    Status st;
    auto start = timings ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    try {
      st = step.native ? step.native->run(in, out) : run_reference(*step.node, step.opset, in, out);
    } catch (const std::bad_alloc&) {
      return step.node->error(StatusCode::kResourceExhausted, "out of memory while computing its outputs");
    } catch (const dnnl::error& e) {
      return step.node->error(StatusCode::kRuntimeError, "oneDNN failed: ", e.what());
    }
    if (!st.ok()) return st;
    if (timings) {
      auto us = [](auto d) { return std::chrono::duration<double, std::micro>(d).count(); };
      timings->push_back({step.node->name.empty() ? step.node->outputs[0] : step.node->name, step.node->op_type,
                          us(std::chrono::steady_clock::now() - start), us(start - run_start)});
    }
    for (size_t i = 0; i < out.size(); ++i) {
      int s = step.outputs[i];
      if (s >= 0) slots[static_cast<size_t>(s)] = std::move(out[i]);
    }
    for (int s : step.release) slots[static_cast<size_t>(s)] = CpuValue();
  }
  std::vector<Value> results;
  for (int s : output_slots_) {
    CpuValue& v = slots[static_cast<size_t>(s)];
    results.push_back(v.has_native || v.has_plain ? v.as_plain() : Value());
  }
  return results;
}

std::vector<std::string> CpuProgram::fallback_nodes() const {
  std::vector<std::string> names;
  for (const auto& s : steps_) if (!s.native) names.push_back(s.node->describe());
  return names;
}

}  // namespace cpu
}  // namespace pyflame_rt
