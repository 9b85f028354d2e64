// Helpers for the wafer tests: one-node graphs, the normalised L2 error and a run of a graph
// on the wafer and on the CPU device side by side.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "devices/device_registry.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {

// ||a - b||_2 / ||b||_2 (the "normalised error").
inline double normalised_l2(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num) / std::max(1e-30, std::sqrt(den));
}

inline std::unique_ptr<Device> make_device(const std::string& name, std::map<std::string, std::string> options = {}) {
  DeviceConfig cfg;
  cfg.num_threads = 1;
  cfg.options = std::move(options);
  auto dev = DeviceRegistry::global().create(name, cfg);
  EXPECT_TRUE(dev.ok()) << dev.status().to_string();
  return dev.ok() ? std::move(*dev) : nullptr;
}

// Runs `g` on the wafer (with `options`) and on the CPU device; every output within `tol`
// (normalised L2), every node on "wse3". Returns the wafer's report (parsed).
inline nlohmann::json expect_wafer_matches_cpu(const Graph& g, const std::vector<Value>& feeds,
                                               std::map<std::string, std::string> options, double tol = 1e-6,
                                               double* worst = nullptr) {
  auto wse = make_device("wse3", options);
  auto cpu = make_device("cpu");
  auto claim = wse->claim(g, std::vector<bool>(g.nodes.size(), false));
  EXPECT_TRUE(claim.declined.empty()) << (claim.declined.empty() ? "" : claim.declined.begin()->second);
  auto we = wse->compile(g);
  auto ce = cpu->compile(g);
  if (!we.ok() || !ce.ok()) {
    ADD_FAILURE() << (we.ok() ? ce.status().to_string() : we.status().to_string());
    return {};
  }
  auto a = (*we)->run(feeds);
  auto b = (*ce)->run(feeds);
  if (!a.ok() || !b.ok()) {
    ADD_FAILURE() << (a.ok() ? b.status().to_string() : a.status().to_string());
    return {};
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    EXPECT_EQ((*a)[i].tensor.dims(), (*b)[i].tensor.dims()) << "output " << i;
    double e = normalised_l2((*a)[i].tensor, (*b)[i].tensor);
    if (worst) *worst = std::max(*worst, e);
    EXPECT_LE(e, tol) << "output " << g.outputs[i].name;
  }
  auto kernels = (*we)->node_kernels();
  EXPECT_EQ(kernels.size(), g.nodes.size());
  for (const auto& k : kernels) EXPECT_EQ(k.device, "wse3") << k.node;
  return nlohmann::json::parse((*we)->report_json());
}

}  // namespace pyflame_rt
