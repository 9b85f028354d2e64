// The device registry: built-in devices by name and provider, creation with options, and what
// get_available_providers() is built from.
#include "devices/device_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace pyflame_rt {
namespace {

TEST(DeviceRegistryTest, FindsBuiltinsByNameAndProvider) {
  const DeviceRegistry& reg = DeviceRegistry::global();
  ASSERT_NE(reg.find("cpu"), nullptr);
  EXPECT_EQ(reg.find("CPUExecutionProvider")->name, "cpu");
  ASSERT_NE(reg.find("ref"), nullptr);
  EXPECT_FALSE(reg.find("ref")->listed);
  EXPECT_EQ(reg.find("CUDAExecutionProvider"), nullptr);
}

TEST(DeviceRegistryTest, AvailableProvidersListOnlyListedDevicesOnce) {
  std::vector<std::string> providers = DeviceRegistry::global().available_providers();
  EXPECT_NE(std::find(providers.begin(), providers.end(), "CPUExecutionProvider"), providers.end());
  EXPECT_EQ(std::find(providers.begin(), providers.end(), "ReferenceExecutionProvider"), providers.end());
  std::set<std::string> unique(providers.begin(), providers.end());
  EXPECT_EQ(unique.size(), providers.size());
}

TEST(DeviceRegistryTest, CreateUnknownNamesTheKnownDevices) {
  auto d = DeviceRegistry::global().create("tpu", DeviceConfig{});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("unknown device 'tpu' (known: "), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("cpu"), std::string::npos) << d.status().message();
}

TEST(DeviceRegistryTest, CpuReportsProviderOptionsItIgnores) {
  DeviceConfig cfg;
  cfg.options["use_arena"] = "1";
  std::vector<std::string> warnings;
  cfg.warnings = &warnings;
  auto d = DeviceRegistry::global().create("CPUExecutionProvider", cfg);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'use_arena' is ignored"), std::string::npos) << warnings[0];
}

TEST(DeviceRegistryTest, DuplicateNameIsRefused) {
  DeviceRegistry reg;
  DeviceEntry e;
  e.name = "x";
  e.provider = "XProvider";
  e.create = [](const DeviceConfig&) -> Expected<std::unique_ptr<Device>> { return invalid_argument("no"); };
  ASSERT_TRUE(reg.add(e).ok());
  EXPECT_FALSE(reg.add(e).ok());
  EXPECT_EQ(reg.available_providers(), std::vector<std::string>{"XProvider"});
}

TEST(DeviceCapabilitiesTest, OpsetRangeAndDtypesAreChecked) {
  DeviceCapabilities caps;
  caps.dtypes = {DType::kFloat32};
  caps.ops = {{"", "Clip", 11, 13}};
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {{"x", DType::kFloat32, Shape::from_dims({2})}};
  Node& n = g.add_node("Clip", {"x"}, {"y"}, "clip");
  EXPECT_EQ(caps.why_not(g, n), "");
  g.opset_imports[""] = 6;
  EXPECT_EQ(caps.why_not(g, n), "op 'Clip' (opset 6) is not supported");
  g.opset_imports[""] = 13;
  g.inputs[0].dtype = DType::kFloat16;
  EXPECT_EQ(caps.why_not(g, n), "dtype tensor(float16) of input 'x' is not supported");
}

}  // namespace
}  // namespace pyflame_rt
