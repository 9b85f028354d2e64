#include "devices/cpu/dnnl_util.h"

#include <cstring>

#include "devices/cpu/buffer_pool.h"
#include "devices/cpu/channels_last.h"
#include "devices/cpu/output_destination.h"

namespace pyflame_rt {
namespace cpu {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dnnl::memory::dims to_dnnl(const Dims& d) { return dnnl::memory::dims(d.begin(), d.end()); }

dnnl::memory::format_tag plain_tag(size_t rank) {
  using tag = dnnl::memory::format_tag;
  static const tag kTags[] = {tag::a, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  return kTags[rank < 7 ? rank : 6];
}

dnnl::memory::desc plain_desc(const Dims& d) {
  // A 0-d tensor is described as [1].
  Dims dims = d.empty() ? Dims{1} : d;
  return dnnl::memory::desc(to_dnnl(dims), dnnl::memory::data_type::f32, plain_tag(dims.size()));
}

CpuValue CpuValue::allocate_native(const dnnl::memory::desc& desc, Dims dims) {
  // A bound graph output (IOBinding) in the plain layout: written straight into the caller's
  // buffer. Its owner is the caller (a no-op deleter), so no pool ever hands it to anyone else.
  if (OutputDestination::pending() && desc.get_size() > 0) {
    using dt = dnnl::memory::data_type;
    bool f32 = desc.data_type() == dt::f32, u8 = desc.data_type() == dt::u8;
    dnnl::memory::desc plain = plain_desc(dims);
    if (u8) plain = dnnl::memory::desc(plain.dims(), dt::u8, plain_tag(plain.dims().size()));
    if ((f32 || u8) && desc == plain) {
      if (void* p = OutputDestination::claim(f32 ? DType::kFloat32 : DType::kUInt8, dims)) {
        return from_native(dnnl::memory(desc, engine(), p), std::move(dims), std::shared_ptr<void>(p, [](void*) {}));
      }
    }
  }
  BufferPool* pool = BufferPool::current();
  if (!pool || desc.get_size() == 0) return from_native(dnnl::memory(desc, engine()), std::move(dims));
  std::shared_ptr<void> buffer = pool->acquire(desc.get_size());
  dnnl::memory m(desc, engine(), buffer.get());  // before `buffer` is moved into the value
  return from_native(std::move(m), std::move(dims), std::move(buffer));
}

namespace {

// Whether `d` is an f32 nCx8c/nCx16c layout of `dims` (rank 3-5) whose bytes are those of the
// plain layout: every spatial extent 1 and the channels in whole blocks.
bool blocked_as_plain_f32(const dnnl::memory::desc& d, const Dims& dims) {
  if (dims.size() < 3 || dims.size() > 5 || d.data_type() != dnnl::memory::data_type::f32) return false;
  for (size_t i = 2; i < dims.size(); ++i) {
    if (dims[i] != 1) return false;
  }
  using T = dnnl::memory::format_tag;
  const size_t r = dims.size() - 3;
  const T b8[] = {T::aBc8b, T::aBcd8b, T::aBcde8b}, b16[] = {T::aBc16b, T::aBcd16b, T::aBcde16b};
  const dnnl::memory::dims dd = to_dnnl(dims);
  return (dims[1] % 16 == 0 && d == dnnl::memory::desc(dd, dnnl::memory::data_type::f32, b16[r])) ||
         (dims[1] % 8 == 0 && d == dnnl::memory::desc(dd, dnnl::memory::data_type::f32, b8[r]));
}

}  // namespace

const Value& CpuValue::as_plain() {
  if (has_plain) return plain;
  // int8 ops (int8_conv.cpp) leave uint8 data: it stays uint8 when made plain.
  bool u8 = native.get_desc().data_type() == dnnl::memory::data_type::u8;
  Tensor t = pooled_tensor(u8 ? DType::kUInt8 : DType::kFloat32, dims);  // the reorder writes it all
  dnnl::memory::desc desc = plain_desc(dims);
  if (u8) desc = dnnl::memory::desc(desc.dims(), dnnl::memory::data_type::u8, plain_tag(desc.dims().size()));
  if (!u8 && blocked_as_plain_f32(native.get_desc(), dims)) {
    // The same bytes as plain (a global pool's [n, c, 1, 1] in whole blocks): a copy, not a
    // reorder primitive (ResNet-50's Flatten took 30-40 us for 8 KB, ORT's 6; stop 19).
    std::memcpy(t.raw_data(), native.get_data_handle(), desc.get_size());
  } else if (!u8 && is_channels_last_f32(native.get_desc(), dims)) {
    // Our transpose: oneDNN's reorder is slow for this one (channels_last.h).
    const int64_t batch = dims[0], channels = dims[1];
    channels_last_to_first(static_cast<const float*>(native.get_data_handle()), t.data<float>(), batch, channels,
                           batch * channels == 0 ? 0 : num_elements(dims) / (batch * channels));
  } else {
    dnnl::memory dst(desc, engine(), t.raw_data());
    dnnl::reorder(native, dst).execute(thread_stream(), native, dst);
    thread_stream().wait();
  }
  plain = Value(std::move(t));
  has_plain = true;
  return plain;
}

dnnl::memory CpuValue::as_native(const dnnl::memory::desc& desc) {
  if (has_native && native.get_desc() == desc) return native;
  dnnl::memory src = has_native ? native
                                : dnnl::memory(plain_desc(plain.tensor.dims()), engine(),
                                               const_cast<void*>(plain.tensor.raw_data()));
  if (src.get_desc() == desc) return src;
  dnnl::memory dst(desc, engine());
  const Dims& d = has_native ? dims : plain.tensor.dims();
  if (d.size() >= 3 && src.get_desc() == plain_desc(d) && is_channels_last_f32(desc, d)) {
    // Our transpose: oneDNN's reorder is slow for this one too (channels_last.h).
    const int64_t batch = d[0], channels = d[1];
    channels_first_to_last(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(dst.get_data_handle()),
                           batch, channels, batch * channels == 0 ? 0 : num_elements(d) / (batch * channels));
    return dst;
  }
  dnnl::reorder(src, dst).execute(thread_stream(), src, dst);
  thread_stream().wait();
  return dst;
}

namespace {
constexpr char kScratchpad[] = "a oneDNN scratchpad";
}  // namespace

Scratchpad::Scratchpad(const dnnl::memory::desc& desc) {
  const size_t bytes = desc.get_size();
  BufferPool* pool = BufferPool::current();
  if (pool && bytes > 0) {
    buffer_ = pool->acquire(bytes, kScratchpad);  // charged by the pool while held
    memory_ = dnnl::memory(desc, engine(), buffer_.get());
    return;
  }
  charged_ = charge_current_budget(bytes, kScratchpad);  // before allocating: refused first
  try {
    memory_ = dnnl::memory(desc, engine());
  } catch (...) {
    if (charged_) charged_->release(bytes);
    throw;
  }
}

Scratchpad::~Scratchpad() {
  if (charged_) charged_->release(memory_.get_desc().get_size());
}

}  // namespace cpu
}  // namespace pyflame_rt
