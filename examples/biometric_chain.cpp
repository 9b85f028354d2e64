// detect -> crop -> (embed, liveness in parallel) -> join on synthetic camera frames, with the
// C++ Pipeline API. The three models are small graphs built here, so the example needs no
// files:  build/bin/biometric_chain
#include <cmath>
#include <iostream>
#include <random>

#include "actors/pipeline.h"

using namespace pyflame_rt;

namespace {

Shape dims(Dims d) { return Shape::from_dims(d); }

std::shared_ptr<const InferenceSession> make(Graph g) {
  g.opset_imports[""] = 13;
  auto s = InferenceSession::create_from_graph(std::move(g));
  if (!s.ok()) {
    std::cerr << s.status().to_string() << "\n";
    std::exit(1);
  }
  return std::shared_ptr<const InferenceSession>(std::move(s).value());
}

Tensor random_tensor(Dims d, std::mt19937& rng) {
  Tensor t(DType::kFloat32, d);
  std::normal_distribution<float> n(0.f, 0.1f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = n(rng);
  return t;
}

// detect: a 3x3 convolution "heat map" over the 64x64 grey frame.
std::shared_ptr<const InferenceSession> detector(std::mt19937& rng) {
  Graph g;
  g.inputs.push_back({"image", DType::kFloat32, dims({1, 1, 64, 64})});
  g.initializers["w"] = random_tensor({1, 1, 3, 3}, rng);
  g.add_node("Conv", {"image", "w"}, {"heat"}).attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.outputs.push_back({"heat", DType::kFloat32, dims({1, 1, 64, 64})});
  return make(std::move(g));
}

// embed: a 32x32 face crop -> 128-d L2-normalised embedding.
std::shared_ptr<const InferenceSession> embedder(std::mt19937& rng) {
  Graph g;
  g.inputs.push_back({"face", DType::kFloat32, dims({1, 1024})});
  g.initializers["w"] = random_tensor({1024, 128}, rng);
  g.add_node("MatMul", {"face", "w"}, {"raw"});
  g.add_node("ReduceL2", {"raw"}, {"norm"}).attributes["axes"] = Attribute::make_ints({1});
  g.add_node("Div", {"raw", "norm"}, {"embedding"});
  g.outputs.push_back({"embedding", DType::kFloat32, dims({1, 128})});
  return make(std::move(g));
}

// liveness: a score in (0, 1) from the crop.
std::shared_ptr<const InferenceSession> liveness(std::mt19937& rng) {
  Graph g;
  g.inputs.push_back({"face", DType::kFloat32, dims({1, 1024})});
  g.initializers["w"] = random_tensor({1024, 1}, rng);
  g.add_node("MatMul", {"face", "w"}, {"logit"});
  g.add_node("Sigmoid", {"logit"}, {"live"});
  g.outputs.push_back({"live", DType::kFloat32, dims({1, 1})});
  return make(std::move(g));
}

// crop: the 32x32 window around the hottest pixel of the detector's map, flattened.
Expected<Frame> crop(const Frame& frame) {
  const Tensor& heat = frame.at("heat");
  const Tensor& image = frame.at("image");
  const float* h = heat.data<float>();
  int64_t best = std::max_element(h, h + heat.numel()) - h;
  int64_t cy = std::clamp<int64_t>(best / 64, 16, 48), cx = std::clamp<int64_t>(best % 64, 16, 48);
  Tensor face(DType::kFloat32, {1, 1024});
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 32; ++x) face.data<float>()[y * 32 + x] = image.data<float>()[(cy - 16 + y) * 64 + cx - 16 + x];
  Frame out = frame;
  out["face"] = face;
  return out;
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  auto pipeline = Pipeline::create({model_stage("detect", detector(rng)),
                                    StageSpec{"crop", {"detect"}, crop},
                                    model_stage("embed", embedder(rng), {"crop"}),
                                    model_stage("liveness", liveness(rng), {"crop"}),
                                    StageSpec{"join", {"embed", "liveness"}, nullptr}});
  if (!pipeline.ok()) {
    std::cerr << pipeline.status().to_string() << "\n";
    return 1;
  }
  const int frames = 50;
  for (int i = 0; i < frames; ++i) {
    auto seq = (*pipeline)->push({{"image", random_tensor({1, 1, 64, 64}, rng)}}, /*stream=*/1);
    if (!seq.ok()) return 1;
  }
  (*pipeline)->close();
  int answered = 0;
  while (true) {
    auto r = (*pipeline)->pull(std::chrono::milliseconds(5000));
    if (!r.ok()) break;  // closed and drained
    if (!r->ok()) {
      std::cerr << "frame " << r->seq << ": " << r->status.to_string() << "\n";
      return 1;
    }
    const Tensor& e = r->frame.at("embedding");
    double norm = 0;
    for (int64_t k = 0; k < e.numel(); ++k) norm += e.data<float>()[k] * e.data<float>()[k];
    if (r->seq % 10 == 0) {
      std::cout << "frame " << r->seq << ": embedding |e|=" << std::sqrt(norm)
                << " liveness=" << r->frame.at("live").data<float>()[0] << " (" << r->latency_us << " us)\n";
    }
    ++answered;
  }
  std::cout << answered << " of " << frames << " frames answered\n";
  for (const auto& m : (*pipeline)->metrics()) {
    std::cout << "  stage " << m.name << ": " << m.processed << " frames, p50 " << m.p50_us << " us, p99 "
              << m.p99_us << " us, max queue " << m.max_queue_depth << ", dropped " << m.dropped << "\n";
  }
  return answered == frames ? 0 : 1;
}
