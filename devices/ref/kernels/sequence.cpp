// Reference kernels: tensor sequences and optionals.
//
// A sequence is a Value of kind kSequence (its element dtype kept even when empty); an empty
// optional is a Value of kind kNone, which kernels see as an absent input (nullptr).
#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

Status sequence_input(const KernelContext& ctx, size_t i, const Value** out) {
  const Value* v = ctx.input_value(i);
  if (!v || !v->is_sequence()) {
    return ctx.error(StatusCode::kInvalidArgument, "input ", i, " must be a tensor sequence, got ",
                     v ? (v->is_tensor() ? "a tensor" : "an empty optional") : "nothing");
  }
  *out = v;
  return Status::OK();
}

// Position input (optional scalar) normalised into [0, limit]; `fallback` when absent.
Status position_input(const KernelContext& ctx, size_t i, int64_t size, int64_t limit,
                      int64_t fallback, int64_t* out) {
  const Tensor* p = ctx.input(i);
  if (!p) { *out = fallback; return Status::OK(); }
  if (p->numel() != 1) return ctx.error(StatusCode::kInvalidArgument, "position must be a scalar");
  int64_t pos = p->value_as_int64(0);
  if (pos < -size || pos > limit) {
    return ctx.error(StatusCode::kInvalidArgument, "position ", pos, " is out of range [", -size,
                     ", ", limit, "] for a sequence of ", size, " tensors");
  }
  *out = pos < 0 ? pos + size : pos;
  return Status::OK();
}

DType dtype_attr(const KernelContext& ctx, const char* name) {
  int64_t code = ctx.node().attr_int(name, 1);
  auto dt = dtype_from_onnx(static_cast<int>(code));
  return dt.ok() ? *dt : DType::kFloat32;
}

Status sequence_empty(KernelContext& ctx) {
  ctx.set_output_value(0, Value::make_sequence({}, dtype_attr(ctx, "dtype")));
  return Status::OK();
}

Status sequence_construct(KernelContext& ctx) {
  std::vector<Tensor> items;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    RETURN_IF_ERROR(ctx.require_input(i));
    if (i && ctx.input(i)->dtype() != items.front().dtype()) {
      return ctx.error(StatusCode::kInvalidArgument, "input ", i, " is ", dtype_name(ctx.input(i)->dtype()),
                       ", input 0 is ", dtype_name(items.front().dtype()), "; a sequence has one dtype");
    }
    items.push_back(*ctx.input(i));
  }
  DType dt = items.empty() ? DType::kFloat32 : items.front().dtype();
  ctx.set_output_value(0, Value::make_sequence(std::move(items), dt));
  return Status::OK();
}

Status sequence_insert(KernelContext& ctx) {
  const Value* seq;
  RETURN_IF_ERROR(sequence_input(ctx, 0, &seq));
  RETURN_IF_ERROR(ctx.require_input(1));
  const Tensor& t = *ctx.input(1);
  if (!seq->sequence.empty() && t.dtype() != seq->sequence_dtype) {
    return ctx.error(StatusCode::kInvalidArgument, "tensor is ", dtype_name(t.dtype()),
                     ", the sequence holds ", dtype_name(seq->sequence_dtype));
  }
  int64_t n = static_cast<int64_t>(seq->sequence.size());
  int64_t pos = 0;
  RETURN_IF_ERROR(position_input(ctx, 2, n, n, n, &pos));
  std::vector<Tensor> items = seq->sequence;
  items.insert(items.begin() + pos, t);
  ctx.set_output_value(0, Value::make_sequence(std::move(items), t.dtype()));
  return Status::OK();
}

Status sequence_erase(KernelContext& ctx) {
  const Value* seq;
  RETURN_IF_ERROR(sequence_input(ctx, 0, &seq));
  int64_t n = static_cast<int64_t>(seq->sequence.size());
  if (n == 0) return ctx.error(StatusCode::kInvalidArgument, "cannot erase from an empty sequence");
  int64_t pos = 0;
  RETURN_IF_ERROR(position_input(ctx, 1, n, n - 1, n - 1, &pos));
  std::vector<Tensor> items = seq->sequence;
  items.erase(items.begin() + pos);
  ctx.set_output_value(0, Value::make_sequence(std::move(items), seq->sequence_dtype));
  return Status::OK();
}

Status sequence_at(KernelContext& ctx) {
  const Value* seq;
  RETURN_IF_ERROR(sequence_input(ctx, 0, &seq));
  RETURN_IF_ERROR(ctx.require_input(1));
  int64_t n = static_cast<int64_t>(seq->sequence.size());
  if (n == 0) return ctx.error(StatusCode::kInvalidArgument, "SequenceAt on an empty sequence");
  int64_t pos = 0;
  RETURN_IF_ERROR(position_input(ctx, 1, n, n - 1, 0, &pos));
  ctx.set_output(0, seq->sequence[static_cast<size_t>(pos)]);
  return Status::OK();
}

Status sequence_length(KernelContext& ctx) {
  const Value* seq;
  RETURN_IF_ERROR(sequence_input(ctx, 0, &seq));
  ctx.set_output(0, Tensor::scalar<int64_t>(static_cast<int64_t>(seq->sequence.size())));
  return Status::OK();
}

Status split_to_sequence(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(1));
  const Tensor& x = *ctx.input(0);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  int64_t len = x.dim(static_cast<size_t>(axis));
  std::vector<int64_t> sizes;
  bool keep = ctx.node().attr_int("keepdims", 1) != 0;
  // One tensor per part: an input empty on another axis ([0, 10^7]) still gives 10^7 of them.
  // The run's deadline is read per part.
  InterruptPoll poll;
  if (const Tensor* split = ctx.input(1)) {
    keep = true;  // keepdims only applies without 'split'
    if (split->rank() == 0) {
      int64_t chunk = split->value_as_int64(0);
      if (chunk <= 0) return ctx.error(StatusCode::kInvalidArgument, "split must be positive, got ", chunk);
      for (int64_t s = 0; s < len; s += chunk) {
        RETURN_IF_ERROR(poll.tick(16));
        sizes.push_back(std::min(chunk, len - s));
      }
    } else {
      sizes = split->to_int64_vector();
      // The sizes are the model's: each must be >= 0 and their sum is checked (INT64_MIN twice
      // overflowed; UBSan, kernel_run).
      for (int64_t s : sizes) {
        if (s < 0) return ctx.error(StatusCode::kInvalidArgument, "split ", dims_to_string(sizes), " has a negative size");
      }
      int64_t sum = 0;
      if (!checked_sum(sizes, &sum) || sum != len) {
        return ctx.error(StatusCode::kInvalidArgument, "split ", dims_to_string(sizes), " does not sum to axis ", axis,
                         "'s length ", len);
      }
    }
  } else {
    sizes.assign(static_cast<size_t>(len), 1);
  }
  std::vector<Tensor> items;
  int64_t start = 0;
  for (int64_t s : sizes) {
    RETURN_IF_ERROR(poll.tick(256));
    Tensor part = slice_along(x, axis, start, s);
    if (!keep) {
      Dims d = part.dims();
      d.erase(d.begin() + axis);
      part = part.reshaped(d);
    }
    items.push_back(std::move(part));
    start += s;
  }
  ctx.set_output_value(0, Value::make_sequence(std::move(items), x.dtype()));
  return Status::OK();
}

Status concat_from_sequence(KernelContext& ctx) {
  const Value* seq;
  RETURN_IF_ERROR(sequence_input(ctx, 0, &seq));
  if (seq->sequence.empty()) return ctx.error(StatusCode::kInvalidArgument, "cannot concatenate an empty sequence");
  bool new_axis = ctx.node().attr_int("new_axis", 0) != 0;
  const Tensor& first = seq->sequence.front();
  int64_t rank = static_cast<int64_t>(first.rank()) + (new_axis ? 1 : 0);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), rank, &axis));
  for (size_t i = 1; i < seq->sequence.size(); ++i) {
    const Tensor& t = seq->sequence[i];
    bool ok = t.rank() == first.rank() && t.dtype() == first.dtype();
    for (size_t d = 0; ok && d < t.rank(); ++d) {
      ok = t.dim(d) == first.dim(d) || (!new_axis && static_cast<int64_t>(d) == axis);
    }
    if (!ok) {
      return ctx.error(StatusCode::kInvalidArgument, "sequence element ", i, " is ", t.summary(),
                       ", element 0 is ", first.summary());
    }
  }
  if (new_axis) {
    ctx.set_output(0, stack_along(seq->sequence, axis, first.dims(), first.dtype()));
  } else {
    ctx.set_output(0, concat_along(seq->sequence, axis));
  }
  return Status::OK();
}

Status optional_kernel(KernelContext& ctx) {
  const Value* v = ctx.input_value(0);
  ctx.set_output_value(0, v ? *v : Value());
  return Status::OK();
}

Status optional_has_element(KernelContext& ctx) {
  ctx.set_output(0, Tensor::scalar<bool>(ctx.input_value(0) != nullptr));
  return Status::OK();
}

Status optional_get_element(KernelContext& ctx) {
  const Value* v = ctx.input_value(0);
  if (!v) return ctx.error(StatusCode::kInvalidArgument, "the optional input is empty");
  ctx.set_output_value(0, *v);
  return Status::OK();
}

}  // namespace

void register_sequence_kernels(KernelRegistry& r) {
  r.add("", "SequenceEmpty", sequence_empty);
  r.add("", "SequenceConstruct", sequence_construct);
  r.add("", "SequenceInsert", sequence_insert);
  r.add("", "SequenceErase", sequence_erase);
  r.add("", "SequenceAt", sequence_at);
  r.add("", "SequenceLength", sequence_length);
  r.add("", "SplitToSequence", split_to_sequence);
  r.add("", "ConcatFromSequence", concat_from_sequence);
  r.add("", "Optional", optional_kernel);
  r.add("", "OptionalHasElement", optional_has_element);
  r.add("", "OptionalGetElement", optional_get_element);
}

}  // namespace pyflame_rt
