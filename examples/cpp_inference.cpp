// Runs a model from C++ with the same shape of API as ONNX Runtime: create a session, read its
// input/output metadata, feed tensors, get tensors back.
//
//   build/bin/cpp_inference examples/models/tiny_cnn.onnx
#include <iostream>

#include "session/inference_session.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: cpp_inference MODEL.onnx\n";
    return 2;
  }
  pyflame_rt::SessionOptions options;
  options.optimization_level = pyflame_rt::OptLevel::kAll;
  auto session = pyflame_rt::InferenceSession::create(argv[1], options, {pyflame_rt::kCpuProvider});
  if (!session.ok()) {
    std::cerr << session.status().to_string() << "\n";
    return 1;
  }
  std::map<std::string, pyflame_rt::Tensor> feeds;
  for (const auto& input : (*session)->inputs()) {
    // Symbolic dims (like a batch dim) become 1 for this demo feed.
    pyflame_rt::Dims dims;
    for (const auto& d : input.shape.dims) dims.push_back(d.known() ? d.value : 1);
    pyflame_rt::Tensor t(input.dtype, dims);
    if (input.dtype == pyflame_rt::DType::kFloat32) {
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i % 7) * 0.1f;
    }
    std::cout << "input  " << input.name << " " << input.type() << " fed " << t.summary() << "\n";
    feeds[input.name] = t;
  }
  auto outputs = (*session)->run({}, feeds);
  if (!outputs.ok()) {
    std::cerr << outputs.status().to_string() << "\n";
    return 1;
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    const auto& t = (*outputs)[i];
    std::cout << "output " << (*session)->outputs()[i].name << " " << t.summary();
    if (t.dtype() == pyflame_rt::DType::kFloat32 && t.numel() > 0) std::cout << " first " << t.data<float>()[0];
    std::cout << "\n";
  }
  return 0;
}
