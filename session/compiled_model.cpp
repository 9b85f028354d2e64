#include "session/compiled_model.h"

#include <cstring>
#include <sstream>

#include "actors/partition_chain.h"
#include "compiler/pipeline.h"
#include "compiler/placement.h"
#include "graph/pfm_format.h"
#include "session/compiled_model.pb.h"

namespace pyflame_rt {

namespace {

constexpr int kCompiledFormatVersion = 1;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) { out += ' '; continue; }
    out += c;
  }
  return out + "\"";
}

ChainStage chain_stage(const CompiledPartition& p) {
  ChainStage s;
  s.name = p.name + " (" + p.device + ")";
  s.executable = p.executable;
  for (const auto& v : p.graph.inputs) s.inputs.push_back(v.name);
  for (const auto& v : p.graph.outputs) s.outputs.push_back(v.name);
  s.keep = p.carry;
  return s;
}

}  // namespace

CompiledModel::~CompiledModel() = default;

Status CompiledModel::start_chain() {
  if (partitions_.size() < 2) return Status::OK();
  std::vector<ChainStage> stages;
  for (const auto& p : partitions_) stages.push_back(chain_stage(p));
  chain_ = PartitionChain::create(std::move(stages));
  return Status::OK();
}

Expected<std::shared_ptr<CompiledModel>> CompiledModel::compile(const Graph& graph,
                                                                const std::vector<std::shared_ptr<Device>>& devices,
                                                                OptLevel level,
                                                                const std::vector<std::string>& disabled_passes) {
  std::vector<const Device*> raw;
  for (const auto& d : devices) raw.push_back(d.get());
  ASSIGN_OR_RETURN(Placement placement, place_graph(graph, raw));
  std::shared_ptr<CompiledModel> model(new CompiledModel());
  model->inputs_ = graph.inputs;
  model->outputs_ = graph.outputs;
  model->declined_ = std::move(placement.declined);
  model->devices_ = devices;
  for (auto& placed : placement.partitions) {
    Device& device = *devices[placed.device];
    CompiledPartition part;
    part.name = placed.part.name;
    part.device = device.name();
    part.carry = std::move(placed.part.carry);
    // A model wholly on one device compiles the graph itself (same inputs and outputs, in
    // the same order): run() then hands the caller's inputs straight to the executable.
    Graph partition_graph = placement.partitions.size() == 1 ? graph : std::move(placed.part.graph);
    ASSIGN_OR_RETURN(part.graph, run_passes(std::move(partition_graph), device.pass_names(level), disabled_passes));
    Expected<std::unique_ptr<Executable>> exe = device.compile(part.graph);
    if (!exe.ok()) return exe.status().with_context("device " + device.name() + ", partition " + part.name + ": ");
    part.executable = std::move(exe).value();
    model->partitions_.push_back(std::move(part));
  }
  RETURN_IF_ERROR(model->start_chain());
  return model;
}

std::vector<std::string> CompiledModel::devices_used() const {
  std::vector<std::string> out;
  for (const auto& p : partitions_) {
    bool seen = false;
    for (const auto& d : out) seen |= d == p.device;
    if (!seen) out.push_back(p.device);
  }
  return out;
}

Expected<std::vector<Value>> CompiledModel::run(std::vector<Value> inputs, const RunContext& ctx) const {
  if (partitions_.size() == 1) return partitions_[0].executable->run(std::move(inputs), ctx);
  ValueFrame frame;
  for (size_t i = 0; i < inputs_.size() && i < inputs.size(); ++i) frame[inputs_[i].name] = std::move(inputs[i]);
  if (chain_) {
    ASSIGN_OR_RETURN(frame, chain_->run(std::move(frame), ctx));
  }
  std::vector<Value> out;
  for (const auto& o : outputs_) {
    auto it = frame.find(o.name);
    if (it == frame.end()) return make_status(StatusCode::kFail, "output '", o.name, "' was not produced");
    out.push_back(it->second);
  }
  return out;
}

Expected<std::vector<Value>> CompiledModel::run_profiled(std::vector<Value> inputs,
                                                         std::vector<NodeTiming>* timings) const {
  if (partitions_.size() == 1) return partitions_[0].executable->run_profiled(std::move(inputs), timings);
  // Profiled runs walk the partitions on the caller's thread: the timings are per node, not
  // per hop, and the frame moves exactly as in the chain.
  ValueFrame frame;
  for (size_t i = 0; i < inputs_.size() && i < inputs.size(); ++i) frame[inputs_[i].name] = std::move(inputs[i]);
  double offset_us = 0;
  for (const auto& p : partitions_) {
    ChainStage stage = chain_stage(p);
    std::vector<Value> in;
    for (const auto& name : stage.inputs) in.push_back(frame[name]);
    std::vector<NodeTiming> part_timings;
    ASSIGN_OR_RETURN(std::vector<Value> out, p.executable->run_profiled(std::move(in), &part_timings));
    double end_us = offset_us;
    for (auto& t : part_timings) {
      t.start_us += offset_us;
      end_us = std::max(end_us, t.start_us + t.duration_us);
      timings->push_back(std::move(t));
    }
    offset_us = end_us;
    for (size_t i = 0; i < stage.outputs.size() && i < out.size(); ++i) frame[stage.outputs[i]] = std::move(out[i]);
  }
  std::vector<Value> out;
  for (const auto& o : outputs_) out.push_back(frame[o.name]);
  return out;
}

std::vector<NodeKernel> CompiledModel::node_kernels() const {
  std::vector<NodeKernel> out;
  for (const auto& p : partitions_) {
    std::vector<NodeKernel> k = p.executable->node_kernels();
    if (k.empty()) {
      // A device that does not report per node ran all of its partition itself.
      for (const Node& n : p.graph.nodes) k.push_back({n.name, n.op_type, p.device, "native"});
    }
    // The partition's device ran it, whatever executable it built (a device may reuse the
    // reference interpreter; its kernel field then says "reference").
    for (auto& one : k) one.device = p.device;
    out.insert(out.end(), k.begin(), k.end());
  }
  return out;
}

std::vector<std::string> CompiledModel::fallback_nodes() const {
  std::vector<std::string> out = declined_;
  for (const auto& p : partitions_) {
    std::vector<std::string> f = p.executable->fallback_nodes();
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

std::string CompiledModel::report_json() const {
  std::ostringstream os;
  os << "{\"partitions\": [";
  for (size_t i = 0; i < partitions_.size(); ++i) {
    const auto& p = partitions_[i];
    std::string report = p.executable->report_json();
    os << (i ? ", " : "") << "{\"name\": " << json_string(p.name) << ", \"device\": " << json_string(p.device)
       << ", \"nodes\": " << p.graph.nodes.size() << ", \"report\": " << (report.empty() ? "null" : report) << "}";
  }
  os << "]}";
  return os.str();
}

Expected<std::string> CompiledModel::serialize() const { return serialize(nullptr, 0); }

Expected<std::string> CompiledModel::serialize(std::vector<ExternalTensor>* external, size_t min_bytes) const {
  compiled::CompiledModel proto;
  proto.set_format_version(kCompiledFormatVersion);
  // The interface as a node-less graph whose inputs are the model's inputs then its outputs
  // (a graph with outputs no node makes would not load).
  Graph interface;
  interface.inputs = inputs_;
  interface.inputs.insert(interface.inputs.end(), outputs_.begin(), outputs_.end());
  ASSIGN_OR_RETURN(std::string iface, serialize_pfm(interface));
  proto.set_interface(iface);
  proto.set_input_count(static_cast<int32_t>(inputs_.size()));
  for (size_t index = 0; index < partitions_.size(); ++index) {
    const CompiledPartition& p = partitions_[index];
    compiled::Partition* pp = proto.add_partitions();
    pp->set_name(p.name);
    pp->set_device(p.device);
    // The copy shares the tensors' buffers: only the map entries are new.
    Graph stored = p.graph;
    if (external) {
      for (auto& [name, tensor] : stored.initializers) {
        if (tensor.dtype() == DType::kString || tensor.nbytes() < min_bytes) continue;
        external->push_back({index, name, tensor});
        // Empty, not removed: the graph still validates when it loads, before the weight is back.
        tensor = Tensor(tensor.dtype(), {0});
      }
    }
    ASSIGN_OR_RETURN(std::string g, serialize_pfm(stored));
    pp->set_graph(g);
    for (const auto& c : p.carry) pp->add_carry(c);
  }
  for (const auto& d : declined_) proto.add_declined(d);
  std::string out;
  if (!proto.SerializeToString(&out)) return make_status(StatusCode::kFail, "the compiled model did not serialise");
  return out;
}

Expected<std::shared_ptr<CompiledModel>> CompiledModel::deserialize(const std::string& bytes, const DeviceConfig& config) {
  return deserialize(bytes, {}, config, {});
}

Expected<std::shared_ptr<CompiledModel>> CompiledModel::deserialize(const std::string& bytes,
                                                                    const std::vector<std::shared_ptr<Device>>& devices,
                                                                    const DeviceConfig& config,
                                                                    std::vector<ExternalTensor> external,
                                                                    std::map<size_t, PackedWeights> packed) {
  compiled::CompiledModel proto;
  if (!proto.ParseFromString(bytes)) {
    return make_status(StatusCode::kInvalidProtobuf, "compiled model: the bytes do not parse (", bytes.size(), " bytes)");
  }
  if (proto.format_version() != kCompiledFormatVersion) {
    return make_status(StatusCode::kInvalidProtobuf, "compiled model: format version ", proto.format_version(),
                       ", this build reads version ", kCompiledFormatVersion);
  }
  std::shared_ptr<CompiledModel> model(new CompiledModel());
  ASSIGN_OR_RETURN(Graph iface, load_pfm_bytes(proto.interface()));
  size_t input_count = static_cast<size_t>(proto.input_count());
  if (input_count > iface.inputs.size()) {
    return make_status(StatusCode::kInvalidProtobuf, "compiled model: ", input_count, " inputs declared, ",
                       iface.inputs.size(), " values in its interface");
  }
  model->inputs_.assign(iface.inputs.begin(), iface.inputs.begin() + input_count);
  model->outputs_.assign(iface.inputs.begin() + input_count, iface.inputs.end());
  for (const auto& d : proto.declined()) model->declined_.push_back(d);
  for (int index = 0; index < proto.partitions_size(); ++index) {
    const compiled::Partition& pp = proto.partitions(index);
    std::shared_ptr<Device> device;
    for (const auto& d : model->devices_) if (d->name() == pp.device()) device = d;
    for (const auto& d : devices) {
      if (!device && d->name() == pp.device()) {
        device = d;
        model->devices_.push_back(d);
      }
    }
    if (!device) {
      ASSIGN_OR_RETURN(std::unique_ptr<Device> made, DeviceRegistry::global().create(pp.device(), config));
      device = std::move(made);
      model->devices_.push_back(device);
    }
    CompiledPartition part;
    part.name = pp.name();
    part.device = pp.device();
    ASSIGN_OR_RETURN(part.graph, load_pfm_bytes(pp.graph()));
    for (auto& e : external) {
      if (e.partition != static_cast<size_t>(index)) continue;
      auto it = part.graph.initializers.find(e.name);
      if (it == part.graph.initializers.end() || it->second.dtype() != e.tensor.dtype()) {
        return make_status(StatusCode::kInvalidProtobuf, "compiled model: partition ", part.name,
                           " has no placeholder for the external weight '", e.name, "'");
      }
      it->second = std::move(e.tensor);
    }
    part.carry.assign(pp.carry().begin(), pp.carry().end());
    auto mine = packed.find(static_cast<size_t>(index));
    Expected<std::unique_ptr<Executable>> exe =
        mine == packed.end() ? device->compile(part.graph)
                             : device->compile_packed(part.graph,
                                                      std::make_shared<const PackedWeights>(std::move(mine->second)));
    if (!exe.ok()) return exe.status().with_context("device " + part.device + ", partition " + part.name + ": ");
    part.executable = std::move(exe).value();
    model->partitions_.push_back(std::move(part));
  }
  RETURN_IF_ERROR(model->start_chain());
  return model;
}

Expected<bool> CompiledModel::warm_up() const {
  std::vector<Value> inputs;
  for (const auto& v : inputs_) {
    if (!v.shape.fully_known() || v.dtype == DType::kString || v.dtype == DType::kUndefined) return false;
    Dims dims;
    for (const Dim& d : v.shape.dims) dims.push_back(d.value);
    Tensor zeros(v.dtype, dims);
    if (zeros.nbytes()) std::memset(zeros.raw_data(), 0, zeros.nbytes());
    inputs.emplace_back(Value(std::move(zeros)));
  }
  RETURN_IF_ERROR(run(std::move(inputs), RunContext{}).status());
  return true;
}

Status CompiledModel::export_packed(std::map<size_t, PackedWeights>* out) const {
  for (size_t i = 0; i < partitions_.size(); ++i) {
    PackedWeights packed;
    RETURN_IF_ERROR(partitions_[i].executable->export_packed(&packed));
    if (!packed.blobs.empty()) (*out)[i] = std::move(packed);
  }
  return Status::OK();
}

}  // namespace pyflame_rt
