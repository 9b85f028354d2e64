#include "devices/cpu/cpu_program.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "devices/cpu/denormals.h"
#include "devices/cpu/half_weights.h"
#include "devices/cpu/output_destination.h"
#include "devices/cpu/core_contention.h"
#include "devices/cpu/step_threads.h"
#include "devices/cpu/team_placement.h"
#include "devices/run_interrupt.h"
#include "devices/weight_stand_in.h"
#include "devices/thread_limit.h"

namespace pyflame_rt {
namespace cpu {

Expected<std::unique_ptr<CpuProgram>> CpuProgram::build(const Graph& graph, const CpuDeviceOptions& options,
                                                        std::shared_ptr<const PackedWeights> packed) {
  std::unique_ptr<CpuProgram> p(new CpuProgram());
  p->graph_ = graph;
  p->num_threads_ = options.num_threads;
  p->parallel_ = options.parallel_branches;
  p->flush_denormals_ = options.flush_denormals;
  p->pools_ = std::make_unique<RunPools>(options.memory_reuse, options.memory_arena);
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
    step.native = make_native_op(node, step.opset, g, &step.no_native);
    step.work = step_work_of(node.op_type);
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
  // Values a step reads for the last time and only once may be overwritten by it.
  for (Step& step : p->steps_) {
    for (int s : step.release) {
      if (std::count(step.inputs.begin(), step.inputs.end(), s) == 1) step.release_once.push_back(s);
    }
  }
  // The dependency graph between steps, for parallel execution.
  std::vector<int> producer(p->slot_count_, -1);
  p->readers_.assign(p->slot_count_, 0);
  for (size_t i = 0; i < p->steps_.size(); ++i) {
    Step& step = p->steps_[i];
    std::set<int> read(step.inputs.begin(), step.inputs.end());
    std::set<int> from;
    for (int s : read) {
      if (s < 0) continue;
      ++p->readers_[static_cast<size_t>(s)];
      if (producer[static_cast<size_t>(s)] >= 0) from.insert(producer[static_cast<size_t>(s)]);
    }
    step.producers = static_cast<int>(from.size());
    for (int f : from) p->steps_[static_cast<size_t>(f)].consumers.push_back(i);
    for (int s : step.outputs) if (s >= 0) producer[static_cast<size_t>(s)] = static_cast<int>(i);
  }
  for (int s : p->output_slots_) p->readers_[static_cast<size_t>(s)] = -1;  // never released
  p->producer_of_ = std::move(producer);
  p->ran_native_.reset(new std::atomic<bool>[p->steps_.size()]);
  for (size_t i = 0; i < p->steps_.size(); ++i) p->ran_native_[i].store(p->steps_[i].native != nullptr);
  RETURN_IF_ERROR(p->import_packed(packed ? *packed : PackedWeights{}));
  return p;
}

namespace {
std::string step_name(const Node& node) { return node.name.empty() ? node.outputs[0] : node.name; }
}  // namespace

int CpuProgram::configured_threads() const {
  static const int kDefaultThreads = omp_get_num_procs();  // num_threads 0: one per core
  int threads = num_threads_ > 0 ? num_threads_ : kDefaultThreads;
  if (int limit = IntraOpThreadLimit::current(); limit > 0 && limit < threads) threads = limit;
  return threads;
}

bool CpuProgram::run_contended(int threads) const {
  // A plan file's stand-in weights (weight_stand_in.h) are zeros: their ops must run on the
  // packed blobs import_packed checked they take, built for the configured team. A plan for
  // another team might not take them, so such programs keep their team.
  if (has_stand_ins_) return false;
  const int64_t last = typical_run_ns_.load(std::memory_order_relaxed);
  if (last > 0 && std::chrono::nanoseconds(last) < kMinShrinkableRun) return false;
  return uncontended_threads(threads) < threads;
}

Status CpuProgram::import_packed(const PackedWeights& packed) {
  // Weights a plan left out (devices/weight_stand_in.h): their readers must run on their
  // blobs, or the partition cannot run here (the plan cache then compiles the model again).
  std::set<std::string> left_out;
  for (const auto& [name, tensor] : graph_.initializers) {
    if (is_weight_stand_in(tensor)) left_out.insert(name);
  }
  has_stand_ins_ = !left_out.empty();
  std::vector<const Node*> need_blob;  // per step: the node, when it reads a left-out weight
  std::vector<std::string> need_what;
  for (const Step& step : steps_) {
    std::string what;
    for (const auto& in : step.node->inputs) if (left_out.count(in)) what = in;
    need_blob.push_back(what.empty() ? nullptr : step.node);
    need_what.push_back(what);
  }
  auto unfit = [&](size_t i, const std::string& why) {
    return make_status(StatusCode::kInvalidProtobuf, "plan: node '", step_name(*need_blob[i]), "' reads weight '",
                       need_what[i], "', which the plan left out for its packed form, and ", why,
                       "; the plan must be compiled again on this machine");
  };
  if (packed.blobs.empty() && left_out.empty()) return Status::OK();
  if (!packed.valid_here()) {
    for (size_t i = 0; i < steps_.size(); ++i) {
      if (need_blob[i]) return unfit(i, "the packed weights were made on " + packed.validity);
    }
    note_stale_packed("(every node)", "packed on " + packed.validity + ", this machine is " + packed_weights_validity());
    return Status::OK();
  }
  struct Work {
    size_t step;
    Dims key;
    bool used = false;  // the op built this plan on its blob
  };
  std::vector<Work> work;
  for (size_t i = 0; i < steps_.size(); ++i) {
    Step& step = steps_[i];
    if (!step.native) {
      if (need_blob[i]) return unfit(i, "no native kernel takes it here");
      continue;
    }
    std::vector<PackedBlob> blobs = packed.for_node(step_name(*step.node));
    if (blobs.empty()) {
      if (need_blob[i]) return unfit(i, "the plan has no packed weights for it");
      continue;
    }
    for (const auto& b : blobs) work.push_back({i, b.key});
    step.native->import_packed(std::move(blobs));
  }
  // Building the plans is mostly oneDNN generating its jit kernels, independent per op: two
  // threads (this machine's cores) halve it. A plan that fails here fails again, and says
  // why, on the first run.
  // oneDNN sizes a primitive (and the layout of its weights) for the OpenMP threads of the
  // thread that creates it: those of the runs, as when a run builds it.
  const int threads_per_run = configured_threads();
  std::atomic<size_t> next{0};
  auto worker = [&] {
    RunTeam team(threads_per_run);
    omp_set_num_threads(threads_per_run);
    for (size_t i; (i = next.fetch_add(1)) < work.size();) {
      uint64_t before = packed_weights_used_on_this_thread();
      Status st = steps_[work[i].step].native->prepare(work[i].key);
      work[i].used = st.ok() && packed_weights_used_on_this_thread() > before;
    }
  };
  unsigned threads = std::min<unsigned>(2, std::max(1u, std::thread::hardware_concurrency()));
  if (work.size() < 2) threads = 1;
  std::vector<std::thread> helpers;
  for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(worker);
  worker();
  for (auto& h : helpers) h.join();
  std::vector<bool> took(steps_.size(), false);
  for (const Work& w : work) took[w.step] = took[w.step] || w.used;
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (need_blob[i] && !took[i]) return unfit(i, "its kernel did not take the packed weights");
  }
  return Status::OK();
}

Status CpuProgram::export_packed(PackedWeights* out) const {
  out->validity = packed_weights_validity();
  for (const Step& step : steps_) {
    if (step.native) step.native->export_packed(step_name(*step.node), &out->blobs);
  }
  return Status::OK();
}

namespace {

// An omitted optional input (empty name) or an empty optional value reaches kernels as nullptr.
CpuValue* present_or_null(CpuValue* v) {
  bool absent = !v || (!v->has_native && (!v->has_plain || v->plain.is_none()));
  return absent ? nullptr : v;
}

NodeTiming timing_of(const Node& node, std::chrono::steady_clock::time_point start,
                     std::chrono::steady_clock::time_point run_start) {
  auto us = [](auto d) { return std::chrono::duration<double, std::micro>(d).count(); };
  return {node.name.empty() ? node.outputs[0] : node.name, node.op_type,
          us(std::chrono::steady_clock::now() - start), us(start - run_start)};
}

// True when an input holds a tensor with no elements (a 0-row batch, an empty chunk). oneDNN
// divides by dimensions while it creates primitives (SIGFPE on 0), and an empty tensor has no
// work a native op could speed up: such steps run on the reference kernel, which produces the
// empty outputs with their shapes.
bool has_empty_tensor(const std::vector<CpuValue*>& in) {
  for (const CpuValue* v : in) {
    if (!v) continue;
    if (v->has_native ? num_elements(v->dims) == 0 : v->plain.is_tensor() && v->plain.tensor.numel() == 0) return true;
  }
  return false;
}

}  // namespace

void CpuProgram::set_step_threads(size_t index, const std::vector<CpuValue*>& in, int threads, bool contended) const {
  thread_local std::vector<const Dims*> dims;  // kept: no allocation per step
  dims.clear();
  for (const CpuValue* v : in) {
    if (v && v->has_native) {
      dims.push_back(&v->dims);
    } else if (v && v->has_plain && v->plain.is_tensor()) {
      dims.push_back(&v->plain.tensor.dims());
    } else {
      dims.push_back(nullptr);
    }
  }
  // omp_set_num_threads only sets this thread's ICV: cheap enough for every step.
  const int team = step_threads(steps_[index].work, dims, threads, omp_workers_block(), contended);
  (team > 1 ? team_counters_.team : team_counters_.one_thread).fetch_add(1, std::memory_order_relaxed);
  omp_set_num_threads(team);
  // On contended cores the step's plans are those of its own team: a large step keeps the
  // team and shares the plans (and packed weights) of uncontended runs; the others get
  // primitives made for one thread (the run's RunTeam scope restores the key after).
  if (contended) RunTeam::current() = team;
}

Status CpuProgram::run_step(size_t index, const std::vector<CpuValue*>& in, std::vector<CpuValue>& out,
                            const Tensor* dest) const {
  const Step& step = steps_[index];
  OutputDestination::Scope destination(dest);
  try {
    // A native op given an empty tensor goes to the reference kernel: oneDNN primitive
    // creation divides by zero-sized dims (SIGFPE), the reference kernels make empty outputs.
    if (!step.native || has_empty_tensor(in)) return run_reference(*step.node, step.opset, in, out);
    // A native op falls back through run_reference on this thread: count those calls.
    uint64_t before = reference_runs_on_this_thread();
    Status st = step.native->run(in, out);
    ran_native_[index].store(reference_runs_on_this_thread() == before, std::memory_order_relaxed);
    return st;
  } catch (const std::bad_alloc&) {
    return step.node->error(StatusCode::kResourceExhausted, "out of memory while computing its outputs");
  } catch (const std::length_error&) {  // a value-sized std::vector past max_size
    return step.node->error(StatusCode::kResourceExhausted, "a buffer for its outputs is too large to allocate");
  } catch (const dnnl::error& e) {
    return step.node->error(StatusCode::kRuntimeError, "oneDNN failed: ", e.what());
  }
}

// Steps whose inputs are all computed run as soon as a worker is free: the caller and one
// more thread, a step running alone with every intra-op thread, two side by side with half. A step works on its own copies of its
// inputs (copies share the buffers): a value's lazy layout conversions are not thread-safe,
// and two branches may read the same value at once. The first error stops the run.
Status CpuProgram::execute_parallel(std::vector<CpuValue>& slots, int threads, std::vector<NodeTiming>* timings,
                                    const std::vector<const Tensor*>& dest) const {
  const int workers = 2;
  BufferPool* pool = BufferPool::current();  // the helper thread allocates from the run's pool too
  const int per_worker = std::max(1, threads / workers);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> ready;
  std::vector<int> waiting(steps_.size()), readers = readers_;
  size_t finished = 0;
  Status error;
  for (size_t i = 0; i < steps_.size(); ++i) {
    waiting[i] = steps_[i].producers;
    if (waiting[i] == 0) ready.push_back(i);
  }
  auto run_start = std::chrono::steady_clock::now();
  size_t running = 0;
  auto work = [&] {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return !ready.empty() || finished == steps_.size() || !error.ok(); });
      if (!error.ok() || ready.empty()) return;
      if (Status st = check_run_interrupt(); !st.ok()) {
        error = st;
        cv.notify_all();
        return;
      }
      size_t i = ready.front();
      ready.pop_front();
      // Alone (nothing else running or ready): every thread; beside another step: a share.
      const int team = running == 0 && ready.empty() ? threads : per_worker;
      ++running;
      const Step& step = steps_[i];
      std::vector<CpuValue> copies;
      copies.reserve(step.inputs.size());
      for (int s : step.inputs) copies.push_back(s >= 0 ? slots[static_cast<size_t>(s)] : CpuValue());
      lock.unlock();
      std::vector<CpuValue*> in;
      for (size_t k = 0; k < copies.size(); ++k) in.push_back(present_or_null(step.inputs[k] >= 0 ? &copies[k] : nullptr));
      set_step_threads(i, in, team);
      std::vector<CpuValue> out(step.outputs.size());
      auto start = std::chrono::steady_clock::now();
      Status st = run_step(i, in, out, dest[i]);
      NodeTiming timing = timing_of(*step.node, start, run_start);
      copies.clear();
      lock.lock();
      --running;
      if (!st.ok()) {
        if (error.ok()) error = st;
        cv.notify_all();
        return;
      }
      if (timings) timings->push_back(timing);
      for (size_t k = 0; k < out.size(); ++k) {
        int s = step.outputs[k];
        if (s >= 0) slots[static_cast<size_t>(s)] = std::move(out[k]);
      }
      for (int s : std::set<int>(step.inputs.begin(), step.inputs.end())) {
        if (s >= 0 && readers[static_cast<size_t>(s)] > 0 && --readers[static_cast<size_t>(s)] == 0) {
          slots[static_cast<size_t>(s)] = CpuValue();
        }
      }
      ++finished;
      for (size_t c : step.consumers) {
        if (--waiting[c] == 0) ready.push_back(c);
      }
      // This worker takes the next ready step itself: wake the other one only for a second
      // step (a chain stays on one thread, its OpenMP team warm) or for the end.
      if (ready.size() >= 2 || finished == steps_.size()) cv.notify_all();
    }
  };
  // The helper checks the same terminate flag and deadline, and charges the same budget.
  const RunContext* context = current_run_context();
  RunContext run_context = context ? *context : RunContext();
  std::thread helper([&] {
    RunTeam team_scope(threads);
    BufferPool::Scope scope(pool);
    RunInterruptScope interrupt_scope(run_context);
    work();
  });
  work();
  helper.join();
  omp_set_num_threads(threads);
  if (timings) {
    std::sort(timings->begin(), timings->end(),
              [](const NodeTiming& a, const NodeTiming& b) { return a.start_us < b.start_us; });
  }
  return error;
}

std::vector<const Tensor*> CpuProgram::destinations(const std::map<std::string, Tensor>& preallocated,
                                                    const std::vector<Value>& inputs) const {
  std::vector<const Tensor*> dest(steps_.size(), nullptr);
  auto overlaps = [](const Tensor& a, const Tensor& b) {
    auto* a0 = static_cast<const char*>(a.raw_data());
    auto* b0 = static_cast<const char*>(b.raw_data());
    return a0 && b0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
  };
  for (size_t k = 0; k < output_slots_.size(); ++k) {
    auto it = preallocated.find(graph_.outputs[k].name);
    if (it == preallocated.end()) continue;
    const Tensor& t = it->second;
    int s = output_slots_[k];
    int producer = producer_of_[static_cast<size_t>(s)];
    if (producer < 0 || t.dtype() == DType::kString || t.nbytes() == 0 ||
        std::count(output_slots_.begin(), output_slots_.end(), s) != 1 ||
        steps_[static_cast<size_t>(producer)].outputs.size() != 1) {
      continue;
    }
    bool clash = false;
    for (const Value& in : inputs) clash = clash || (in.is_tensor() && overlaps(in.tensor, t));
    for (const auto& kv : preallocated) clash = clash || (kv.first != it->first && overlaps(kv.second, t));
    if (!clash) dest[static_cast<size_t>(producer)] = &t;
  }
  return dest;
}

Expected<std::vector<Value>> CpuProgram::execute(std::vector<Value> inputs, std::vector<NodeTiming>* timings,
                                                 const std::map<std::string, Tensor>* preallocated) const {
  if (inputs.size() != input_slots_.size()) {
    return invalid_argument("graph expects ", input_slots_.size(), " inputs, got ", inputs.size());
  }
  std::vector<const Tensor*> dest = preallocated && !preallocated->empty() ? destinations(*preallocated, inputs)
                                                                          : std::vector<const Tensor*>(steps_.size());
  // omp_set_num_threads is per calling thread and sticky: set it on every run, so a limit
  // that a previous run on this thread had does not leak into this one.
  const int threads = configured_threads();
  const bool contended = run_contended(threads);
  const auto started = std::chrono::steady_clock::now();
  // The key of the plans its ops build and use (shape_plan_cache.h); on contended cores
  // set_step_threads sets each step's own team.
  RunTeam team(threads);
  omp_set_num_threads(contended ? 1 : threads);
  // A worker on this thread's CPU waits for a time slice at every region (team_placement.h;
  // PFRT_ADAPT_THREADS=0 leaves the team where the OS put it).
  if (!contended && thread_adaptation_enabled()) keep_team_apart(threads);
  FlushDenormalsScope denormals(flush_denormals_, threads);
  // Declared before the slots: destroyed after them, once every buffer came back.
  RunPools::Lease pool = pools_->lease();
  BufferPool::Scope pool_scope(pool.get());
  std::vector<CpuValue> slots(slot_count_);
  for (size_t i = 0; i < inputs.size(); ++i) slots[static_cast<size_t>(input_slots_[i])] = CpuValue::from_plain(std::move(inputs[i]));
  for (const auto& c : constants_) slots[static_cast<size_t>(c.first)] = CpuValue::from_plain(Value(c.second));
  // Contended cores: the steps run in order (a helper thread for side branches would wait
  // for a core as the OpenMP workers do).
  if (parallel_ && steps_.size() > 1 && !contended) {
    RETURN_IF_ERROR(execute_parallel(slots, threads, timings, dest));
  } else {
    std::vector<CpuValue*> in;
    std::vector<CpuValue> out;  // each step's outputs, moved into the slots (its capacity kept)
    auto run_start = std::chrono::steady_clock::now();
    for (size_t index = 0; index < steps_.size(); ++index) {
      const Step& step = steps_[index];
      RETURN_IF_ERROR(check_run_interrupt());
      in.clear();
      for (int s : step.inputs) in.push_back(present_or_null(s >= 0 ? &slots[static_cast<size_t>(s)] : nullptr));
      for (int s : step.release_once) slots[static_cast<size_t>(s)].last_use = true;
      out.clear();
      out.resize(step.outputs.size());
      set_step_threads(index, in, threads, contended);
      auto start = timings ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      RETURN_IF_ERROR(run_step(index, in, out, dest[index]));
      if (timings) timings->push_back(timing_of(*step.node, start, run_start));
      for (size_t i = 0; i < out.size(); ++i) {
        int s = step.outputs[i];
        if (s >= 0) slots[static_cast<size_t>(s)] = std::move(out[i]);
      }
      for (int s : step.release) slots[static_cast<size_t>(s)] = CpuValue();
    }
    omp_set_num_threads(threads);  // the run's team again for whatever this thread runs next
  }
  std::vector<Value> results;
  for (int s : output_slots_) {
    CpuValue& v = slots[static_cast<size_t>(s)];
    // Written into the caller's buffer (always the plain layout there, see allocate_native):
    // returned as the caller's tensor rather than reordered into a new one.
    int producer = producer_of_[static_cast<size_t>(s)];
    const Tensor* d = producer >= 0 ? dest[static_cast<size_t>(producer)] : nullptr;
    if (d && v.has_native && v.native.get_data_handle() == d->raw_data()) {
      results.push_back(Value(*d));
      continue;
    }
    results.push_back(v.has_native || v.has_plain ? v.as_plain() : Value());
  }
  const int64_t took = (std::chrono::steady_clock::now() - started).count();
  const int64_t typical = typical_run_ns_.load(std::memory_order_relaxed);
  typical_run_ns_.store(typical > 0 ? std::min(took, typical + typical / 4) : took, std::memory_order_relaxed);
  return results;
}

std::vector<NodeKernel> CpuProgram::node_kernels() const {
  // Run-time choices count: a native op that fell back in the latest run is "reference".
  std::vector<NodeKernel> out;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    bool native = s.native && ran_native_[i].load(std::memory_order_relaxed);
    out.push_back({s.node->name, s.node->op_type, "cpu", native ? "native" : "reference"});
  }
  return out;
}

std::vector<std::string> CpuProgram::fallback_nodes() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    if (!s.native) {
      names.push_back(s.node->describe() + ": " + s.no_native);
    } else if (!ran_native_[i].load(std::memory_order_relaxed)) {
      names.push_back(s.node->describe() + " (native kernel fell back at run time)");
    }
  }
  return names;
}

std::string CpuProgram::report_json() const { return "{\"weights\": " + weights_report_json(graph_) + "}"; }

std::vector<std::pair<std::string, bool>> CpuProgram::native_by_node() const {
  std::vector<std::pair<std::string, bool>> out;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Node& n = *steps_[i].node;
    out.emplace_back(n.name.empty() ? n.outputs[0] : n.name, ran_native_[i].load(std::memory_order_relaxed));
  }
  return out;
}

}  // namespace cpu
}  // namespace pyflame_rt
