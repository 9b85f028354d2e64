// Placement: devices claim nodes in priority order, the graph is cut where the device changes,
// and every refusal is reported.
#include "compiler/placement.h"

#include "devices/ref/ref_device.h"
#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

// A device that runs only the listed op types (float32), as a narrow accelerator would.
class OnlyOpsDevice : public Device {
 public:
  OnlyOpsDevice(std::string name, std::vector<std::string> ops) : name_(std::move(name)) {
    caps_.dtypes = {DType::kFloat32};
    for (auto& op : ops) caps_.ops.push_back({"", op});
  }
  std::string name() const override { return name_; }
  const DeviceCapabilities& capabilities() const override { return caps_; }
  Expected<std::unique_ptr<Executable>> compile(const Graph& g) override { return make_ref_device()->compile(g); }

 private:
  std::string name_;
  DeviceCapabilities caps_;
};

// x -> Relu -> Sigmoid -> Relu -> Tanh -> y
Graph chain() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2, 3})};
  g.add_node("Relu", {"x"}, {"a"}, "r1");
  g.add_node("Sigmoid", {"a"}, {"b"}, "s1");
  g.add_node("Relu", {"b"}, {"c"}, "r2");
  g.add_node("Tanh", {"c"}, {"y"}, "t1");
  g.outputs = {f32("y", {2, 3})};
  return g;
}

TEST(PlacementTest, FirstDeviceTakesWhatItCanTheNextTheRest) {
  OnlyOpsDevice relu("relu_dev", {"Relu", "Tanh"});
  auto ref = make_ref_device();
  auto placed = place_graph(chain(), {&relu, ref.get()});
  ASSERT_TRUE(placed.ok()) << placed.status().to_string();
  ASSERT_EQ(placed->partitions.size(), 3u);  // r1 | s1 | r2 t1
  EXPECT_EQ(placed->partitions[0].device, 0u);
  EXPECT_EQ(placed->partitions[1].device, 1u);
  EXPECT_EQ(placed->partitions[2].device, 0u);
  EXPECT_EQ(placed->partitions[2].part.graph.nodes.size(), 2u);
  ASSERT_EQ(placed->declined.size(), 1u);
  EXPECT_EQ(placed->declined[0], "Sigmoid 's1': not on relu_dev: op 'Sigmoid' (opset 13) is not supported");
  // Partition 1 reads what partition 0 made and hands its value on.
  EXPECT_EQ(placed->partitions[1].part.graph.inputs[0].name, "a");
  EXPECT_EQ(placed->partitions[1].part.graph.outputs[0].name, "b");
}

TEST(PlacementTest, IndependentNodesOfOneDeviceAreGroupedTogether) {
  // Two branches from x: Relu(x) and Sigmoid(x), then Relu(Sigmoid) and Add. In file order
  // the devices alternate; grouped, the narrow device gets its two Relus in one partition.
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {4})};
  g.add_node("Sigmoid", {"x"}, {"s"}, "sig");
  g.add_node("Relu", {"x"}, {"r"}, "relu_a");
  g.add_node("Relu", {"x"}, {"q"}, "relu_b");
  g.add_node("Add", {"s", "r"}, {"t"}, "add1");
  g.add_node("Add", {"t", "q"}, {"y"}, "add2");
  g.outputs = {f32("y", {4})};
  OnlyOpsDevice relu("relu_dev", {"Relu"});
  auto ref = make_ref_device();
  auto placed = place_graph(g, {&relu, ref.get()});
  ASSERT_TRUE(placed.ok());
  ASSERT_EQ(placed->partitions.size(), 2u);
  EXPECT_EQ(placed->partitions[0].part.graph.nodes.size(), 2u);
  EXPECT_EQ(placed->partitions[1].part.graph.nodes.size(), 3u);
}

TEST(PlacementTest, DtypeTheDeviceLacksGoesToTheNext) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {{"i", DType::kInt64, Shape::from_dims({3})}};
  g.add_node("Relu", {"i"}, {"o"}, "int_relu");
  g.outputs = {{"o", DType::kInt64, Shape::from_dims({3})}};
  OnlyOpsDevice relu("relu_dev", {"Relu"});
  auto ref = make_ref_device();
  auto placed = place_graph(g, {&relu, ref.get()});
  ASSERT_TRUE(placed.ok());
  ASSERT_EQ(placed->partitions.size(), 1u);
  EXPECT_EQ(placed->partitions[0].device, 1u);
  ASSERT_EQ(placed->declined.size(), 1u);
  EXPECT_NE(placed->declined[0].find("dtype tensor(int64) of input 'i' is not supported"), std::string::npos)
      << placed->declined[0];
}

TEST(PlacementTest, NodeNoDeviceTakesIsAnErrorNamingEveryReason) {
  OnlyOpsDevice relu("relu_dev", {"Relu"});
  OnlyOpsDevice tanh("tanh_dev", {"Tanh"});
  auto placed = place_graph(chain(), {&relu, &tanh});
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(placed.status().message().find("Sigmoid 's1': no device can run it (relu_dev: op 'Sigmoid'"),
            std::string::npos)
      << placed.status().message();
  EXPECT_NE(placed.status().message().find("tanh_dev: op 'Sigmoid'"), std::string::npos);
}

TEST(PlacementTest, NoDevicesIsAnError) {
  auto placed = place_graph(chain(), {});
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pyflame_rt
