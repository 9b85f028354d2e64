#include "devices/cpu/half_weights.h"

#include <cpuid.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <sstream>

#include "devices/cpu/native_op.h"
#include "devices/cpu/thread_scratch.h"
#include "devices/target_clones.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace cpu {

namespace {

bool weight_op(const Node& n) {
  if (n.domain.empty()) return n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm";
  return n.domain == "pyflame_rt" && (n.op_type == "FusedConv" || n.op_type == "FusedMatMul");
}

// The half initializer a Cast to float reads, or nullptr.
const Tensor* cast_of_half(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.op_type != "Cast" || n.inputs.size() != 1 || n.outputs.size() != 1) return nullptr;
  if (n.attr_int("to", 0) != static_cast<int64_t>(DType::kFloat32)) return nullptr;
  auto it = g.initializers.find(n.inputs[0]);
  return it != g.initializers.end() && is_half(it->second.dtype()) ? &it->second : nullptr;
}

std::atomic<uint64_t> bf16_declined{0};

// The conversions per instruction set; each ends with the scalar conversion of graph/half.h for
// the tail. F16C's and AVX-512's f32 -> f16 round to nearest even like Float16::from_float.
__attribute__((target("avx512f"))) void f16_to_f32_avx512(const uint16_t* s, float* d, int64_t n, float scale) {
  const __m512 k = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm512_storeu_ps(d + i, _mm512_mul_ps(x, k));
  }
  for (; i < n; ++i) d[i] = Float16::to_float(s[i]) * scale;
}

__attribute__((target("avx2,f16c"))) void f16_to_f32_avx2(const uint16_t* s, float* d, int64_t n, float scale) {
  const __m256 k = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_mul_ps(x, k));
  }
  for (; i < n; ++i) d[i] = Float16::to_float(s[i]) * scale;
}

__attribute__((target("avx512f"))) void bf16_to_f32_avx512(const uint16_t* s, float* d, int64_t n, float scale) {
  const __m512 k = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm512_storeu_ps(d + i, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), k));
  }
  for (; i < n; ++i) d[i] = BFloat16::to_float(s[i]) * scale;
}

__attribute__((target("avx2"))) void bf16_to_f32_avx2(const uint16_t* s, float* d, int64_t n, float scale) {
  const __m256 k = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)), k));
  }
  for (; i < n; ++i) d[i] = BFloat16::to_float(s[i]) * scale;
}

__attribute__((target("avx512f"))) void f32_to_f16_avx512(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) d[i] = Float16::from_float(s[i]);
}

__attribute__((target("avx2,f16c"))) void f32_to_f16_avx2(const float* s, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) d[i] = Float16::from_float(s[i]);
}

void f16_to_f32_plain(const uint16_t* s, float* d, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) d[i] = Float16::to_float(s[i]) * scale;
}
void bf16_to_f32_plain(const uint16_t* s, float* d, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) d[i] = BFloat16::to_float(s[i]) * scale;
}
void f32_to_f16_plain(const float* s, uint16_t* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = Float16::from_float(s[i]);
}
// Only at packing time (once per layer): the compiler's vectorisation is enough.
PFRT_TARGET_CLONES void f32_to_bf16(const float* s, uint16_t* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = BFloat16::from_float(s[i]);
}

using ToFloat = void (*)(const uint16_t*, float*, int64_t, float);
using FromFloat = void (*)(const float*, uint16_t*, int64_t);

// The CPU's own features (not oneDNN's ISA cap): these are our loops, and ONEDNN_MAX_CPU_ISA
// does not make an instruction unavailable.
bool has_avx512() { return __builtin_cpu_supports("avx512f"); }
// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" (the
// fuzz build with clang++-14 failed to compile).
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && f16c;
}

ToFloat to_float_fn(DType half) {
  static const ToFloat f16 = has_avx512() ? f16_to_f32_avx512 : has_f16c() ? f16_to_f32_avx2 : f16_to_f32_plain;
  static const ToFloat bf16 = has_avx512() ? bf16_to_f32_avx512 : has_f16c() ? bf16_to_f32_avx2 : bf16_to_f32_plain;
  return half == DType::kBFloat16 ? bf16 : f16;
}

FromFloat from_float_fn(DType half) {
  static const FromFloat f16 = has_avx512() ? f32_to_f16_avx512 : has_f16c() ? f32_to_f16_avx2 : f32_to_f16_plain;
  return half == DType::kBFloat16 ? f32_to_bf16 : f16;
}

// Elements per task of a parallel conversion (128 KiB of f32 written): smaller arrays (most of
// MobileNetV2's layers) convert on the calling thread, cheaper than waking the team.
constexpr int64_t kConvertChunk = 32768;

}  // namespace

bool is_half(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }

dnnl::memory::data_type dnnl_type(DType t) {
  if (t == DType::kBFloat16) return dnnl::memory::data_type::bf16;
  if (t == DType::kFloat16) return dnnl::memory::data_type::f16;
  return dnnl::memory::data_type::f32;
}

bool native_bf16() {
  // cpu_isa values are bit sets: avx512_core_amx contains avx512_core_bf16's bits, avx2_vnni
  // (0x407, numerically larger) does not, so the test is on bits, not order.
  static const bool ok = [] {
    auto need = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & need) == need;
  }();
  return ok;
}

dnnl::memory::data_type compute_type(DType weights) {
  return weights == DType::kBFloat16 && native_bf16() ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

Tensor to_float(const Tensor& t) {
  if (t.dtype() == DType::kFloat32) return t;
  Tensor out(DType::kFloat32, t.dims());
  float* dst = out.data<float>();
  const int64_t n = t.numel();
  if (t.dtype() == DType::kBFloat16) {
    const uint16_t* src = static_cast<const uint16_t*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16::to_float(src[i]);
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) dst[i] = Float16::to_float(src[i]);
  }
  return out;
}

void float_to_half(const float* src, uint16_t* dst, int64_t n, DType half) {
  FromFloat f = from_float_fn(half);
  const int64_t chunks = (n + kConvertChunk - 1) / kConvertChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    f(src + c * kConvertChunk, dst + c * kConvertChunk, std::min(kConvertChunk, n - c * kConvertChunk));
  }
}

void half_to_float(const uint16_t* src, float* dst, int64_t n, DType half, float scale) {
  ToFloat f = to_float_fn(half);
  if (n <= kConvertChunk) {  // no parallel region (also what Winograd's workers call per block)
    f(src, dst, n, scale);
    return;
  }
  const int64_t chunks = (n + kConvertChunk - 1) / kConvertChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    f(src + c * kConvertChunk, dst + c * kConvertChunk, std::min(kConvertChunk, n - c * kConvertChunk), scale);
  }
}

float transformed_scale(const float* x, int64_t n) {
  float peak = 0.f;
  for (int64_t i = 0; i < n; ++i) peak = std::max(peak, std::fabs(x[i]));
  if (!(peak > 0.f) || !std::isfinite(peak)) return 1.f;
  // peak * 2^k in [2^13, 2^14): far from fp16's overflow (65504), and values down to peak/2^37
  // stay normal.
  int e = 0;
  std::frexp(peak, &e);  // peak = m * 2^e, m in [0.5, 1)
  return std::ldexp(1.f, std::max(-100, std::min(100, 14 - e)));
}

void float_to_scaled_f16(const float* src, uint16_t* dst, int64_t n, float scale) {
  constexpr int64_t kBlock = 4096;
  float tmp[kBlock];
  for (int64_t at = 0; at < n; at += kBlock) {
    int64_t m = std::min(kBlock, n - at);
    for (int64_t i = 0; i < m; ++i) tmp[i] = src[at + i] * scale;  // a power of two: exact
    float_to_half(tmp, dst + at, m, DType::kFloat16);
  }
}

struct WeightsScratchTag;
float* weights_scratch(size_t floats) { return thread_scratch<WeightsScratchTag>(floats); }

MappedFloats::MappedFloats(size_t count) : bytes_(std::max<size_t>(count, 1) * sizeof(float)) {
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<float*>(p);
}

MappedFloats::~MappedFloats() { munmap(data_, bytes_); }

std::shared_ptr<const HalfPacked> pack_half_for_f32(const void* weights, DType half, const dnnl::memory::desc& plain_desc,
                                                    const dnnl::memory::desc& packed_desc) {
  const int64_t n = static_cast<int64_t>(plain_desc.get_size() / sizeof(float));
  MappedFloats plain(static_cast<size_t>(n));
  half_to_float(static_cast<const uint16_t*>(weights), plain.data(), n, half);
  MappedFloats packed(packed_desc.get_size() / sizeof(float));
  dnnl::memory src(plain_desc, engine(), plain.data()), dst(packed_desc, engine(), packed.data());
  dnnl::reorder(src, dst).execute(thread_stream(), src, dst);
  thread_stream().wait();
  return std::make_shared<const HalfPacked>(dst, half);
}

HalfPacked::HalfPacked(const dnnl::memory& packed_f32, DType half)
    : desc_(packed_f32.get_desc()), half_(half), count_(static_cast<int64_t>(desc_.get_size() / sizeof(float))) {
  size_t bytes = (static_cast<size_t>(count_) * sizeof(uint16_t) + 63) / 64 * 64;
  auto* p = static_cast<uint16_t*>(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
  if (!p) throw std::bad_alloc();
  data_.reset(p, [](uint16_t* q) { std::free(q); });
  const float* src = static_cast<const float*>(packed_f32.get_data_handle());
  if (desc_.data.format_kind == dnnl_format_kind_wino) {
    // oneDNN's Winograd layout holds transformed weights, not the half values themselves:
    // scaled fp16 (11 significant bits) rather than bf16 (8), whose rounding the output
    // transform amplifies (half_weights.h).
    half_ = DType::kFloat16;
    scale_ = transformed_scale(src, count_);
    float_to_scaled_f16(src, p, count_, scale_);
  } else {
    float_to_half(src, p, count_, half_);
  }
}

dnnl::memory HalfPacked::expand() const {
  float* buf = weights_scratch(static_cast<size_t>(count_));
  half_to_float(data_.get(), buf, count_, half_, 1.f / scale_);
  return dnnl::memory(desc_, engine(), buf);
}

dnnl::memory HalfPacked::expand_copy() const {
  dnnl::memory m(desc_, engine());
  half_to_float(data_.get(), static_cast<float*>(m.get_data_handle()), count_, half_, 1.f / scale_);
  return m;
}

void absorb_half_weights(Graph& graph) {
  std::map<std::string, size_t> cast_of;  // Cast output -> index of the Cast
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (cast_of_half(graph, graph.nodes[i])) cast_of[graph.nodes[i].outputs[0]] = i;
  }
  if (cast_of.empty()) return;
  for (Node& n : graph.nodes) {
    if (!weight_op(n) || n.inputs.size() < 2) continue;
    auto c = cast_of.find(n.inputs[1]);
    if (c == cast_of.end() || n.inputs[0] == n.inputs[1]) continue;
    // The native op decides: one that would not take half weights keeps the Cast (and the
    // node stays a plain float node the reference kernel runs).
    Node rewired = n;
    rewired.inputs[1] = graph.nodes[c->second].inputs[0];
    if (make_native_op(rewired, graph.opset(rewired.domain), graph)) n.inputs[1] = rewired.inputs[1];
  }
  // Casts nobody reads any more (not graph outputs: cast_of_half's outputs feed weights only
  // when constant folding kept them, but a kNone graph keeps every Cast).
  std::set<std::string> read;
  for (const Node& n : graph.nodes) {
    for (const auto& in : n.inputs) read.insert(in);
    for (const auto& kv : n.attributes) {
      if (kv.second.g || !kv.second.graphs.empty()) return;  // subgraphs may read it: keep all
    }
  }
  for (const auto& o : graph.outputs) read.insert(o.name);
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    bool dead = cast_of.count(n.outputs.empty() ? "" : n.outputs[0]) && !read.count(n.outputs[0]);
    if (!dead) kept.push_back(std::move(n));
  }
  graph.nodes = std::move(kept);
}

bool float_weights_for_reference(const Node& node, const Value& activations, const Value& weights, Value* out) {
  if (!weight_op(node) || !activations.is_tensor() || activations.tensor.dtype() != DType::kFloat32 ||
      !weights.is_tensor() || !is_half(weights.tensor.dtype())) {
    return false;
  }
  *out = Value(to_float(weights.tensor));
  return true;
}

void note_bf16_declined(const Node& node, const std::string& impl) {
  bf16_declined.fetch_add(1);
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(node.name).second) {
    log_at(LogSeverity::kWarning, LogScope{}, "node '", node.name, "' (", node.op_type,
           "): oneDNN has only a reference bf16 kernel here (", impl, "); it computes in f32, its packed "
           "weights held bf16 and expanded per run");
  }
}

std::string weights_report_json(const Graph& graph) {
  std::map<std::string, uint64_t> by_dtype;
  uint64_t total = 0;
  for (const auto& kv : graph.initializers) {
    if (graph.find_input(kv.first)) continue;
    by_dtype[dtype_name(kv.second.dtype())] += kv.second.nbytes();
    total += kv.second.nbytes();
  }
  std::map<DType, int> half_nodes;
  for (const Node& n : graph.nodes) {
    if (!weight_op(n) || n.inputs.size() < 2) continue;
    auto it = graph.initializers.find(n.inputs[1]);
    if (it != graph.initializers.end() && is_half(it->second.dtype())) ++half_nodes[it->second.dtype()];
  }
  std::ostringstream os;
  os << "{\"initializer_bytes\": " << total << ", \"initializer_bytes_by_dtype\": {";
  bool first = true;
  for (const auto& kv : by_dtype) {
    os << (first ? "" : ", ") << "\"" << kv.first << "\": " << kv.second;
    first = false;
  }
  int bf16 = half_nodes[DType::kBFloat16], fp16 = half_nodes[DType::kFloat16];
  // Every packed weight of a half-weight node is half: bf16 packed for the bf16 kernels,
  // HalfPacked (expanded per run) for the f32 ones.
  os << "}, \"half_weight_nodes\": {\"bfloat16\": " << bf16 << ", \"float16\": " << fp16 << "}"
     << ", \"half_compute\": {\"bfloat16\": \"" << (native_bf16() ? "bf16" : "f32") << "\", \"float16\": \"f32\"}"
     << ", \"bf16_kernels_declined\": " << bf16_declined.load()
     << ", \"packed_weights_halved\": " << (bf16 + fp16 == 0 ? "null" : "true") << ", \"note\": \"";
  if (bf16 + fp16 == 0) {
    os << "no half-precision weights reach a native convolution or matmul";
  } else {
    os << "stored and packed weights are half";
    if (bf16 && native_bf16()) {
      os << "; bf16 weights run on oneDNN's bf16 kernels (bf16 source and weights, f32 accumulation and output; "
            "depthwise convolutions compute in f32 from bf16 packed weights)";
    }
    if (fp16 || (bf16 && !native_bf16())) {
      os << "; " << (fp16 ? "fp16" : "") << (fp16 && bf16 && !native_bf16() ? " and " : "")
         << (bf16 && !native_bf16() ? "bf16" : "") << " weights compute in f32 (";
      if (fp16) os << "oneDNN 2.6 has no f16 CPU kernels";
      if (fp16 && bf16 && !native_bf16()) os << "; ";
      if (bf16 && !native_bf16()) {
        os << "this CPU, at oneDNN ISA 0x" << std::hex << static_cast<unsigned>(dnnl::get_effective_cpu_isa())
           << std::dec << ", has no native bf16 math";
      }
      os << "): each layer's packed weights are expanded to f32 into a per-thread scratch before it runs";
    }
  }
  os << "\"}";
  return os.str();
}

}  // namespace cpu
}  // namespace pyflame_rt
