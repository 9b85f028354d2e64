// ResNet-50's 3x3 stride-1 convolutions (batch 1, "same" padding, bias and ReLU fused) on
// oneDNN's Winograd, oneDNN's direct kernel and our F(4x4,3x3) (devices/cpu/winograd_conv):
// the 8-channel AVX2 variant with the nChw16c <-> nChw8c reorders it needs beside AVX-512
// kernels, the same without them, and the 16-channel AVX-512 variant on nChw16c.
//
// The host is shared, so the variants run interleaved (one call of each per round) and the
// table gives the minimum and the median over the rounds; every output is checked against
// oneDNN's direct convolution (max |diff| / max |ref|).
//
// Usage: pyflame-winograd-bench [rounds=200] [threads...=1 2]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dnnl.hpp"
#include "devices/cpu/winograd_conv.h"
#include "graph/tensor.h"

namespace {

using dnnl::memory;
using pyflame_rt::DType;
using pyflame_rt::Tensor;
using pyflame_rt::cpu::WinogradConv;

struct Layer {
  int64_t size, channels;
};

struct Variant {
  std::string name;
  std::function<void()> run;
  const float* out;  // nChw16c, to check
  std::vector<double> ms;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// oneDNN's convolution `alg` on nChw16c with bias and ReLU; the constructor throws when oneDNN has
// no such kernel.
struct DnnlConv {
  dnnl::convolution_forward prim;
  memory weights, bias, src, dst;
  std::string impl;
  DnnlConv(dnnl::engine& eng, dnnl::stream& s, dnnl::algorithm alg, const Layer& l, memory& user_w, memory& user_b,
           memory& src_mem) {
    const int64_t c = l.channels, n = l.size;
    memory::desc src_md({1, c, n, n}, memory::data_type::f32, memory::format_tag::nChw16c);
    memory::desc w_md({c, c, 3, 3}, memory::data_type::f32, memory::format_tag::any);
    memory::desc b_md({c}, memory::data_type::f32, memory::format_tag::x);
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, w_md, b_md, src_md, {1, 1},
                                      {0, 0}, {1, 1}, {1, 1});
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    impl = pd.impl_info_str();
    prim = dnnl::convolution_forward(pd);
    weights = memory(pd.weights_desc(), eng);
    dnnl::reorder(user_w, weights).execute(s, user_w, weights);
    bias = user_b;
    src = src_mem;
    dst = memory(pd.dst_desc(), eng);
    s.wait();
  }
  void run(dnnl::stream& s) {
    prim.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
    s.wait();
  }
};

void bench_layer(const Layer& l, int threads, int rounds) {
  omp_set_num_threads(threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const int64_t c = l.channels, n = l.size;
  std::mt19937 gen(static_cast<uint32_t>(c * 131 + n));
  std::normal_distribution<float> dist(0.f, 1.f);
  Tensor w(DType::kFloat32, {c, c, 3, 3}), b(DType::kFloat32, {c});
  const float w_scale = 1.f / std::sqrt(static_cast<float>(c * 9));
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = dist(gen) * w_scale;
  for (int64_t i = 0; i < c; ++i) b.data<float>()[i] = dist(gen) * 0.1f;
  memory user_w(memory::desc({c, c, 3, 3}, memory::data_type::f32, memory::format_tag::oihw), eng, w.raw_data());
  memory user_b(memory::desc({c}, memory::data_type::f32, memory::format_tag::x), eng, b.raw_data());
  memory::desc b16({1, c, n, n}, memory::data_type::f32, memory::format_tag::nChw16c);
  memory::desc b8({1, c, n, n}, memory::data_type::f32, memory::format_tag::nChw8c);
  memory src16(b16, eng), src8(b8, eng), dst8(b8, eng), dst8to16(b16, eng), dst16(b16, eng), dst8only(b8, eng);
  {
    float* p = static_cast<float*>(src16.get_data_handle());
    for (size_t i = 0; i < b16.get_size() / sizeof(float); ++i) p[i] = dist(gen);
    dnnl::reorder(src16, src8).execute(s, src16, src8);
    s.wait();
  }
  DnnlConv direct(eng, s, dnnl::algorithm::convolution_direct, l, user_w, user_b, src16);
  std::vector<Variant> variants;
  variants.push_back({"oneDNN direct (" + direct.impl + ")", [&] { direct.run(s); },
                      static_cast<const float*>(direct.dst.get_data_handle()), {}});
  std::unique_ptr<DnnlConv> wino;
  try {
    wino = std::make_unique<DnnlConv>(eng, s, dnnl::algorithm::convolution_winograd, l, user_w, user_b, src16);
    variants.push_back({"oneDNN Winograd (" + wino->impl + ")", [&] { wino->run(s); },
                        static_cast<const float*>(wino->dst.get_data_handle()), {}});
  } catch (const dnnl::error&) {
    std::printf("(oneDNN has no Winograd for %lldx%lldx%lld here)\n", static_cast<long long>(n),
                static_cast<long long>(n), static_cast<long long>(c));
  }
  const WinogradConv::Geometry g{1, n, n, 1, 1, n, n};
  WinogradConv ours8(w, b, true, DType::kFloat32, 8);
  dnnl::reorder to8(src16, src8), to16(dst8, dst8to16);
  if (WinogradConv::cpu_supported(8)) {
    variants.push_back({"ours F(4x4) AVX2, nChw8c + 2 reorders",
                        [&] {
                          to8.execute(s, src16, src8);
                          s.wait();
                          ours8.run(static_cast<const float*>(src8.get_data_handle()),
                                    static_cast<float*>(dst8.get_data_handle()), g);
                          to16.execute(s, dst8, dst8to16);
                          s.wait();
                        },
                        static_cast<const float*>(dst8to16.get_data_handle()), {}});
    variants.push_back({"ours F(4x4) AVX2, nChw8c, no reorders",
                        [&] {
                          ours8.run(static_cast<const float*>(src8.get_data_handle()),
                                    static_cast<float*>(dst8only.get_data_handle()), g);
                        },
                        nullptr, {}});
  }
  WinogradConv ours16(w, b, true, DType::kFloat32, 16);
  if (WinogradConv::cpu_supported(16)) {
    variants.push_back({"ours F(4x4) AVX-512, nChw16c",
                        [&] {
                          ours16.run(static_cast<const float*>(src16.get_data_handle()),
                                     static_cast<float*>(dst16.get_data_handle()), g);
                        },
                        static_cast<const float*>(dst16.get_data_handle()), {}});
  }
  for (int warm = 0; warm < 5; ++warm) {
    for (auto& v : variants) v.run();
  }
  for (int r = 0; r < rounds; ++r) {
    for (auto& v : variants) {
      auto t0 = std::chrono::steady_clock::now();
      v.run();
      v.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  const float* ref = variants[0].out;
  const size_t count = b16.get_size() / sizeof(float);
  double ref_max = 1e-30;
  for (size_t i = 0; i < count; ++i) ref_max = std::max(ref_max, std::fabs(static_cast<double>(ref[i])));
  const double base = std::min_element(variants[0].ms.begin(), variants[0].ms.end())[0];
  for (auto& v : variants) {
    double err = 0;
    if (v.out) {
      for (size_t i = 0; i < count; ++i) err = std::max(err, std::fabs(static_cast<double>(v.out[i]) - ref[i]));
    }
    const double mn = *std::min_element(v.ms.begin(), v.ms.end());
    std::printf("| %lldx%lldx%lld | %d | %-60s | %8.3f | %8.3f | %5.2f | %s |\n", static_cast<long long>(n),
                static_cast<long long>(n), static_cast<long long>(c), threads, v.name.c_str(), mn, median(v.ms),
                mn / base, v.out ? std::to_string(err / ref_max).substr(0, 8).c_str() : "-");
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  std::vector<int> threads;
  for (int i = 2; i < argc; ++i) threads.push_back(std::atoi(argv[i]));
  if (threads.empty()) threads = {1, 2};
  const std::vector<Layer> layers = {{56, 64}, {28, 128}, {14, 256}, {7, 512}};
  std::printf("rounds %d; min and median ms per call; vs direct = min / oneDNN direct's min; err = max|diff| / "
              "max|direct|\n\n",
              rounds);
  std::printf("| layer (HxWxC) | threads | variant | min ms | median ms | vs direct | err |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int t : threads) {
    for (const Layer& l : layers) bench_layer(l, t, rounds);
  }
  return 0;
}
