// Reference kernels: control flow (If, Loop, Scan).
//
// Bodies are attribute subgraphs run through KernelContext::run_subgraph, which gives them a
// scope that sees the calling graph's values. Loop-carried values are Values (tensors,
// sequences or empty optionals) and pass through untouched; scan outputs are tensors stacked
// along an axis.
#include <algorithm>
#include <cstring>

#include "devices/ref/kernel_groups.h"
#include "devices/run_interrupt.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

Status read_bool_scalar(const KernelContext& ctx, const Tensor& t, const char* what, bool* out) {
  if (t.numel() != 1) {
    return ctx.error(StatusCode::kInvalidArgument, what, " must hold one element, got shape ",
                     dims_to_string(t.dims()));
  }
  if (t.dtype() != DType::kBool && !dtype_is_integer(t.dtype())) {
    return ctx.error(StatusCode::kInvalidArgument, what, " must be bool, got ", dtype_name(t.dtype()));
  }
  *out = t.value_as_int64(0) != 0;
  return Status::OK();
}

// Element dims/dtype of a body output from its declared type (for empty scan outputs).
void declared_elem(const Graph& body, size_t output, Dims* dims, DType* dtype) {
  const ValueInfo& v = body.outputs[output];
  *dtype = v.dtype == DType::kUndefined ? DType::kFloat32 : v.dtype;
  dims->clear();
  if (v.shape.rank_known) {
    for (const Dim& d : v.shape.dims) dims->push_back(d.known() ? d.value : 0);
  }
}

Status if_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(1));
  bool cond = false;
  RETURN_IF_ERROR(read_bool_scalar(ctx, *ctx.input(0), "condition (input 0)", &cond));
  const Graph* branch = ctx.node().attr_graph(cond ? "then_branch" : "else_branch");
  if (!branch) {
    return ctx.error(StatusCode::kInvalidGraph, "missing ", cond ? "then_branch" : "else_branch",
                     " attribute");
  }
  ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(*branch, {}));
  if (outs.size() != ctx.num_outputs()) {
    return ctx.error(StatusCode::kInvalidGraph, cond ? "then" : "else", "_branch returns ",
                     outs.size(), " outputs, the node has ", ctx.num_outputs());
  }
  for (size_t i = 0; i < outs.size(); ++i) ctx.set_output_value(i, std::move(outs[i]));
  return Status::OK();
}

Status loop_kernel(KernelContext& ctx) {
  const Graph* body = ctx.node().attr_graph("body");
  if (!body) return ctx.error(StatusCode::kInvalidGraph, "missing body attribute");
  int64_t max_trips = -1;  // -1: unbounded
  if (const Tensor* m = ctx.input(0)) {
    if (m->numel() != 1) {
      return ctx.error(StatusCode::kInvalidArgument, "trip count M must be a scalar, got shape ",
                       dims_to_string(m->dims()));
    }
    max_trips = m->value_as_int64(0);
  }
  bool cond = true;
  if (const Tensor* c = ctx.input(1)) RETURN_IF_ERROR(read_bool_scalar(ctx, *c, "condition (input 1)", &cond));

  size_t n_carried = ctx.num_inputs() > 2 ? ctx.num_inputs() - 2 : 0;
  if (body->inputs.size() != n_carried + 2) {
    return ctx.error(StatusCode::kInvalidGraph, "body takes ", body->inputs.size(),
                     " inputs, expected ", n_carried + 2, " (iteration, condition and ", n_carried,
                     " loop-carried values)");
  }
  if (body->outputs.size() < n_carried + 1) {
    return ctx.error(StatusCode::kInvalidGraph, "body returns ", body->outputs.size(),
                     " outputs, expected at least ", n_carried + 1);
  }
  size_t n_scan = body->outputs.size() - 1 - n_carried;
  if (ctx.num_outputs() != n_carried + n_scan) {
    return ctx.error(StatusCode::kInvalidGraph, "node has ", ctx.num_outputs(), " outputs, body implies ",
                     n_carried + n_scan);
  }
  std::vector<Value> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    const Value* v = ctx.input_value(i + 2);
    carried.push_back(v ? *v : Value());
  }
  std::vector<std::vector<Tensor>> scans(n_scan);
  for (int64_t iter = 0; (max_trips < 0 || iter < max_trips) && cond; ++iter) {
    RETURN_IF_ERROR(check_run_interrupt());  // a body without nodes never checks itself
    std::vector<Value> inputs;
    inputs.reserve(n_carried + 2);
    inputs.emplace_back(Tensor::scalar<int64_t>(iter));
    inputs.emplace_back(Tensor::scalar<bool>(cond));
    for (auto& v : carried) inputs.push_back(v);
    ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(*body, inputs));
    if (!outs[0].is_tensor()) return ctx.error(StatusCode::kInvalidArgument, "body condition output is not a tensor");
    RETURN_IF_ERROR(read_bool_scalar(ctx, outs[0].tensor, "body condition output", &cond));
    for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(outs[i + 1]);
    for (size_t k = 0; k < n_scan; ++k) {
      Value& s = outs[1 + n_carried + k];
      if (!s.is_tensor()) return ctx.error(StatusCode::kNotImplemented, "scan output ", k, " is not a tensor");
      if (!scans[k].empty() && scans[k].front().dims() != s.tensor.dims()) {
        return ctx.error(StatusCode::kInvalidArgument, "scan output ", k, " changes shape from ",
                         dims_to_string(scans[k].front().dims()), " to ", dims_to_string(s.tensor.dims()),
                         " at iteration ", iter);
      }
      scans[k].push_back(std::move(s.tensor));
    }
  }
  for (size_t i = 0; i < n_carried; ++i) ctx.set_output_value(i, std::move(carried[i]));
  for (size_t k = 0; k < n_scan; ++k) {
    Dims elem;
    DType dt;
    declared_elem(*body, 1 + n_carried + k, &elem, &dt);
    if (!scans[k].empty()) { elem = scans[k].front().dims(); dt = scans[k].front().dtype(); }
    ctx.set_output(n_carried + k, stack_along(scans[k], 0, elem, dt));
  }
  return Status::OK();
}

// One scan over tensors whose scanned axis is given per input (opset 9+ semantics).
Status scan_once(KernelContext& ctx, const Graph& body, std::vector<Tensor> states,
                 const std::vector<Tensor>& scan_inputs, const std::vector<int64_t>& in_axes,
                 const std::vector<int64_t>& in_dirs, int64_t seq_len,
                 std::vector<Tensor>* final_states, std::vector<std::vector<Tensor>>* scan_elems) {
  size_t n_state = states.size();
  size_t n_scan_out = body.outputs.size() - n_state;
  scan_elems->assign(n_scan_out, {});
  for (int64_t t = 0; t < seq_len; ++t) {
    RETURN_IF_ERROR(check_run_interrupt());
    std::vector<Value> inputs;
    for (auto& s : states) inputs.emplace_back(s);
    for (size_t j = 0; j < scan_inputs.size(); ++j) {
      int64_t idx = in_dirs[j] == 1 ? seq_len - 1 - t : t;
      inputs.emplace_back(take_along(scan_inputs[j], in_axes[j], idx));
    }
    ASSIGN_OR_RETURN(std::vector<Value> outs, ctx.run_subgraph(body, inputs));
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!outs[i].is_tensor()) return ctx.error(StatusCode::kInvalidArgument, "body output ", i, " is not a tensor");
    }
    for (size_t i = 0; i < n_state; ++i) states[i] = std::move(outs[i].tensor);
    for (size_t k = 0; k < n_scan_out; ++k) (*scan_elems)[k].push_back(std::move(outs[n_state + k].tensor));
  }
  *final_states = std::move(states);
  return Status::OK();
}

Status scan_kernel(KernelContext& ctx) {
  const Graph* body = ctx.node().attr_graph("body");
  if (!body) return ctx.error(StatusCode::kInvalidGraph, "missing body attribute");
  int64_t n_scan_in = ctx.node().attr_int("num_scan_inputs", -1);
  bool v8 = ctx.opset() < 9;  // opset 8: optional sequence_lens first, batch axis 0 everywhere
  size_t first = v8 ? 1 : 0;
  size_t n_in = ctx.num_inputs() - first;
  if (n_scan_in < 1 || static_cast<size_t>(n_scan_in) > n_in) {
    return ctx.error(StatusCode::kInvalidArgument, "num_scan_inputs must be in [1, ", n_in, "], got ", n_scan_in);
  }
  size_t n_state = n_in - static_cast<size_t>(n_scan_in);
  if (body->inputs.size() != n_in || body->outputs.size() < n_state) {
    return ctx.error(StatusCode::kInvalidGraph, "body takes ", body->inputs.size(), " inputs and returns ",
                     body->outputs.size(), " outputs; the node has ", n_state, " state and ", n_scan_in,
                     " scan inputs");
  }
  size_t n_scan_out = body->outputs.size() - n_state;
  for (size_t i = first; i < ctx.num_inputs(); ++i) RETURN_IF_ERROR(ctx.require_input(i));

  auto axes_attr = [&](const char* name, size_t count, int64_t fallback) {
    std::vector<int64_t> v = ctx.node().attr_ints(name);
    if (v.empty()) v.assign(count, fallback);
    return v;
  };
  std::vector<int64_t> in_axes = axes_attr("scan_input_axes", static_cast<size_t>(n_scan_in), 0);
  std::vector<int64_t> in_dirs = axes_attr(v8 ? "directions" : "scan_input_directions", static_cast<size_t>(n_scan_in), 0);
  std::vector<int64_t> out_axes = axes_attr("scan_output_axes", n_scan_out, 0);
  std::vector<int64_t> out_dirs = axes_attr("scan_output_directions", n_scan_out, 0);
  if (in_axes.size() != static_cast<size_t>(n_scan_in) || in_dirs.size() != static_cast<size_t>(n_scan_in) ||
      out_axes.size() != n_scan_out || out_dirs.size() != n_scan_out) {
    return ctx.error(StatusCode::kInvalidArgument, "scan axes/directions attributes must have one entry per scan input/output");
  }

  // Opset 8 runs the opset-9 scan once per batch element (axis 0) over axis 1.
  int64_t batch = 1;
  if (v8) batch = ctx.input(first)->rank() > 0 ? ctx.input(first)->dim(0) : 1;
  if (batch < 1) return ctx.error(StatusCode::kInvalidArgument, "batch size must be >= 1, got ", batch);
  std::vector<std::vector<Tensor>> state_out(n_state), scan_out(n_scan_out);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> states, scans;
    for (size_t i = 0; i < n_state; ++i) {
      const Tensor& s = *ctx.input(first + i);
      states.push_back(v8 ? take_along(s, 0, b) : s);
    }
    int64_t seq_len = -1;
    std::vector<int64_t> axes(static_cast<size_t>(n_scan_in));
    for (size_t j = 0; j < static_cast<size_t>(n_scan_in); ++j) {
      Tensor x = *ctx.input(first + n_state + j);
      if (v8) x = take_along(x, 0, b);
      RETURN_IF_ERROR(normalize_axis(ctx, in_axes[j], static_cast<int64_t>(x.rank()), &axes[j]));
      int64_t len = x.dim(static_cast<size_t>(axes[j]));
      if (seq_len >= 0 && len != seq_len) {
        return ctx.error(StatusCode::kInvalidArgument, "scan input ", j, " has sequence length ", len,
                         ", earlier scan inputs have ", seq_len);
      }
      seq_len = len;
      scans.push_back(std::move(x));
    }
    if (v8 && ctx.input(0)) seq_len = std::min(seq_len, ctx.input(0)->value_as_int64(b));
    std::vector<Tensor> finals;
    std::vector<std::vector<Tensor>> elems;
    RETURN_IF_ERROR(scan_once(ctx, *body, states, scans, axes, in_dirs, seq_len, &finals, &elems));
    for (size_t i = 0; i < n_state; ++i) state_out[i].push_back(std::move(finals[i]));
    for (size_t k = 0; k < n_scan_out; ++k) {
      std::vector<Tensor>& e = elems[k];
      if (out_dirs[k] == 1) std::reverse(e.begin(), e.end());
      Dims elem;
      DType dt;
      declared_elem(*body, n_state + k, &elem, &dt);
      if (!e.empty()) { elem = e.front().dims(); dt = e.front().dtype(); }
      int64_t axis = 0;
      RETURN_IF_ERROR(normalize_axis(ctx, out_axes[k], static_cast<int64_t>(elem.size()) + 1, &axis));
      scan_out[k].push_back(stack_along(e, axis, elem, dt));
    }
  }
  for (size_t i = 0; i < n_state; ++i) {
    const Tensor& f = state_out[i].front();
    ctx.set_output(i, v8 ? stack_along(state_out[i], 0, f.dims(), f.dtype()) : state_out[i].front());
  }
  for (size_t k = 0; k < n_scan_out; ++k) {
    const Tensor& f = scan_out[k].front();
    ctx.set_output(n_state + k, v8 ? stack_along(scan_out[k], 0, f.dims(), f.dtype()) : scan_out[k].front());
  }
  return Status::OK();
}

}  // namespace

void register_control_flow_kernels(KernelRegistry& r) {
  r.add("", "If", if_kernel);
  r.add("", "Loop", loop_kernel);
  r.add("", "Scan", scan_kernel);
}

}  // namespace pyflame_rt
