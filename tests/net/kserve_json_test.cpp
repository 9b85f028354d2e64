#include "net/http/kserve_json.h"
#include "net/model_repository.h"

#include <gtest/gtest.h>

#include <cstring>

namespace pyflame_rt::net::http {
namespace {

Expected<ParsedInferRequest> parse(const std::string& body, std::optional<size_t> json_length = std::nullopt) {
  return parse_infer_request(body, json_length, "m", "");
}

void expect_invalid(const std::string& body, const std::string& fragment,
                    std::optional<size_t> json_length = std::nullopt) {
  auto r = parse(body, json_length);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

TEST(KServeJson, FlatAndNestedDataGiveTheSameTensor) {
  auto flat = parse(R"({"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3.5,4]}]})");
  auto nested = parse(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3.5,4]]}]})");
  ASSERT_TRUE(flat.ok()) << flat.status().to_string();
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(flat->request.id, "a");
  EXPECT_EQ(flat->request.model_name, "m");
  const Tensor& a = flat->request.inputs[0].tensor;
  const Tensor& b = nested->request.inputs[0].tensor;
  ASSERT_EQ(a.dims(), (Dims{2, 2}));
  ASSERT_EQ(b.dims(), (Dims{2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
  EXPECT_EQ(a.data<float>()[2], 3.5f);
}

TEST(KServeJson, TypedDataAndParameters) {
  auto r = parse(R"({"parameters":{"priority":1,"timeout":100,"binary_data_output":true},
    "inputs":[{"name":"i","shape":[3],"datatype":"INT64","data":[-1,0,9007199254740993]},
              {"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
              {"name":"s","shape":[1],"datatype":"BYTES","data":["hi"]}],
    "outputs":[{"name":"y","parameters":{"binary_data":false}}]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.priority, 1);
  EXPECT_EQ(r->request.timeout_us, 100);
  EXPECT_EQ(r->request.inputs[0].tensor.data<int64_t>()[2], 9007199254740993LL);  // exact, not via double
  EXPECT_TRUE(r->request.inputs[1].tensor.data<bool>()[0]);
  EXPECT_EQ(r->request.inputs[2].tensor.data<std::string>()[0], "hi");
  EXPECT_TRUE(r->binary.binary("z"));   // request-level default
  EXPECT_FALSE(r->binary.binary("y"));  // per-output override
}

TEST(KServeJson, BadRequestsNameTheProblem) {
  expect_invalid("{nope", "malformed JSON");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FLOAT","data":[1,2]}]})", "'FLOAT'");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]})",
                 "needs 4 elements, 'data' has 3");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})", "expected an integer");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[300]}]})", "does not fit");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]})", "expected a number");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]})", "'shape'");
  expect_invalid(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]})", "needs 'data'");
  expect_invalid(R"({"inputs":{}})", "'inputs' array");
  expect_invalid(R"({"inputs":[{"name":"x","shape":"1","datatype":"FP32","data":[1]}]})", "'shape'");
  expect_invalid(R"({"inputs":[],"parameters":{"priority":"high"}})", "'priority'");
}

TEST(KServeJson, BinaryInputsFollowTheJsonHeader) {
  std::string header = R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},
                                     {"name":"y","shape":[1],"datatype":"INT64","data":[7]}]})";
  float values[2] = {1.25f, -2.0f};
  std::string body = header + std::string(reinterpret_cast<const char*>(values), 8);
  auto r = parse(body, header.size());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.inputs[0].tensor.data<float>()[0], 1.25f);
  EXPECT_EQ(r->request.inputs[0].tensor.data<float>()[1], -2.0f);
  EXPECT_EQ(r->request.inputs[1].tensor.data<int64_t>()[0], 7);

  expect_invalid(header + std::string(4, '\0'), "exceeds the 4 bytes left", header.size());
  expect_invalid(header + std::string(12, '\0'), "12 bytes after the JSON header", header.size());
  expect_invalid(header, "exceeds the body", header.size() + 10);
  std::string wrong = R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  expect_invalid(wrong + std::string(8, '\0'), "needs 12 bytes, got 8", wrong.size());
}

TEST(KServeJson, ResponseInJsonOrBinary) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "1";
  resp.id = "r1";
  resp.outputs.push_back({"y", Tensor::from_vector<float>({1, 2}, {0.5f, 0.1f}), {}});
  resp.outputs.push_back({"k", Tensor::from_vector<int64_t>({1}, {3}), {}});
  EncodedBody js = encode_infer_response(resp, {});
  EXPECT_FALSE(js.json_length.has_value());
  EXPECT_EQ(js.body,
            R"({"model_name":"m","model_version":"1","id":"r1","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],)"
            R"("data":[0.5,0.1]},{"name":"k","datatype":"INT64","shape":[1],"data":[3]}]})");

  BinaryOutputChoice binary;
  binary.per_output["y"] = true;
  EncodedBody bin = encode_infer_response(resp, binary);
  ASSERT_TRUE(bin.json_length.has_value());
  std::string head = bin.body.substr(0, *bin.json_length);
  EXPECT_NE(head.find(R"("parameters":{"binary_data_size":8})"), std::string::npos) << head;
  EXPECT_NE(head.find(R"("data":[3])"), std::string::npos);
  ASSERT_EQ(bin.body.size(), *bin.json_length + 8);
  float back[2];
  std::memcpy(back, bin.body.data() + *bin.json_length, 8);
  EXPECT_EQ(back[0], 0.5f);
  EXPECT_EQ(back[1], 0.1f);
}

TEST(KServeJson, MetadataAndIndex) {
  ModelMetadata md;
  md.name = "m";
  md.versions = {"1"};
  md.platform = "p";
  md.inputs.push_back({"x", DType::kFloat32, Shape({Dim(std::string("batch")), Dim(3)})});
  EXPECT_EQ(model_metadata_json(md),
            R"({"inputs":[{"datatype":"FP32","name":"x","shape":[-1,3]}],"name":"m","outputs":[],"platform":"p",)"
            R"("versions":["1"]})");
  std::vector<RepositoryEntry> index{{"a", "1", ModelState::kReady, ""}, {"b", "", ModelState::kUnavailable, "unloaded"}};
  EXPECT_EQ(repository_index_json(index, false),
            R"([{"name":"a","state":"READY","version":"1"},{"name":"b","reason":"unloaded","state":"UNAVAILABLE"}])");
  EXPECT_EQ(repository_index_json(index, true), R"([{"name":"a","state":"READY","version":"1"}])");
  EXPECT_EQ(error_json("bad \"x\""), R"({"error":"bad \"x\""})");
}

}  // namespace
}  // namespace pyflame_rt::net::http
