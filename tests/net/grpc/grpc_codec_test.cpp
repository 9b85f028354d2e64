#include "net/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>

namespace pyflame_rt::net {
namespace {

inference::ModelInferRequest raw_request(const std::vector<float>& values, std::vector<int64_t> shape) {
  inference::ModelInferRequest req;
  req.set_model_name("m");
  req.set_id("r1");
  auto* in = req.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  for (int64_t d : shape) in->add_shape(d);
  req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return req;
}

TEST(GrpcCodec, RawInputsBecomeTensorsWithTheirShape) {
  auto req = request_from_proto(raw_request({1, 2, 3, 4, 5, 6}, {2, 3}));
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  EXPECT_EQ(req->model_name, "m");
  EXPECT_EQ(req->id, "r1");
  ASSERT_EQ(req->inputs.size(), 1u);
  const Tensor& t = req->inputs[0].tensor;
  EXPECT_EQ(t.dims(), (Dims{2, 3}));
  EXPECT_EQ(t.data<float>()[5], 6.0f);
}

TEST(GrpcCodec, TypedContentsAreReadPerDatatype) {
  inference::ModelInferRequest req;
  req.set_model_name("m");
  auto* a = req.add_inputs();
  a->set_name("ids");
  a->set_datatype("INT64");
  a->add_shape(3);
  for (int64_t v : {7, -8, 9}) a->mutable_contents()->add_int64_contents(v);
  auto* b = req.add_inputs();
  b->set_name("small");
  b->set_datatype("INT8");
  b->add_shape(2);
  b->mutable_contents()->add_int_contents(-3);
  b->mutable_contents()->add_int_contents(4);
  auto* c = req.add_inputs();
  c->set_name("text");
  c->set_datatype("BYTES");
  c->add_shape(1);
  c->mutable_contents()->add_bytes_contents("hi");
  auto got = request_from_proto(req);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->inputs[0].tensor.data<int64_t>()[1], -8);
  EXPECT_EQ(got->inputs[1].tensor.dtype(), DType::kInt8);
  EXPECT_EQ(got->inputs[1].tensor.data<int8_t>()[0], -3);
  EXPECT_EQ(got->inputs[2].tensor.data<std::string>()[0], "hi");
}

TEST(GrpcCodec, WrongByteCountNamesTheInputAndBothSizes) {
  auto req = request_from_proto(raw_request({1, 2, 3, 4, 5}, {2, 3}));
  ASSERT_FALSE(req.ok());
  EXPECT_EQ(req.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(req.status().message().find("input 'x'"), std::string::npos) << req.status().message();
  EXPECT_NE(req.status().message().find("24"), std::string::npos) << req.status().message();
  EXPECT_NE(req.status().message().find("20"), std::string::npos) << req.status().message();
}

TEST(GrpcCodec, RefusesBadDatatypesCountsAndMixedContents) {
  auto bad_type = raw_request({1}, {1});
  bad_type.mutable_inputs(0)->set_datatype("FLOAT");
  EXPECT_EQ(request_from_proto(bad_type).status().code(), StatusCode::kInvalidArgument);

  auto extra_raw = raw_request({1}, {1});
  extra_raw.add_raw_input_contents("xxxx");
  EXPECT_NE(request_from_proto(extra_raw).status().message().find("one per input"), std::string::npos);

  auto mixed = raw_request({1}, {1});
  mixed.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
  EXPECT_NE(request_from_proto(mixed).status().message().find("both"), std::string::npos);

  inference::ModelInferRequest typed;
  auto* in = typed.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  in->add_shape(2);
  in->mutable_contents()->add_fp32_contents(1.0f);  // one value for two elements
  auto st = request_from_proto(typed).status();
  EXPECT_NE(st.message().find("needs 2 values"), std::string::npos) << st.message();

  auto negative = raw_request({1}, {-1});
  EXPECT_EQ(request_from_proto(negative).status().code(), StatusCode::kInvalidArgument);
}

TEST(GrpcCodec, SequenceParametersAreRead) {
  auto proto = raw_request({1}, {1});
  (*proto.mutable_parameters())["sequence_id"].set_int64_param(42);
  (*proto.mutable_parameters())["sequence_start"].set_bool_param(true);
  (*proto.mutable_parameters())["priority"].set_int64_param(1);
  auto req = request_from_proto(proto);
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  ASSERT_TRUE(req->sequence.has_value());
  EXPECT_EQ(req->sequence->id, "42");
  EXPECT_TRUE(req->sequence->start);
  EXPECT_FALSE(req->sequence->end);
  EXPECT_EQ(req->priority, 1);
}

TEST(GrpcCodec, ResponsesCarryRawOutputsAndMetadata) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "2";
  resp.id = "r9";
  resp.parameters["sequence_id"] = std::string("s1");
  resp.outputs.push_back({"y", Tensor::from_vector<int32_t>({2}, {5, -6}), {}});
  inference::ModelInferResponse proto;
  response_to_proto(resp, &proto);
  EXPECT_EQ(proto.model_version(), "2");
  EXPECT_EQ(proto.id(), "r9");
  EXPECT_EQ(proto.parameters().at("sequence_id").string_param(), "s1");
  ASSERT_EQ(proto.outputs_size(), 1);
  EXPECT_EQ(proto.outputs(0).datatype(), "INT32");
  EXPECT_EQ(proto.outputs(0).shape(0), 2);
  ASSERT_EQ(proto.raw_output_contents_size(), 1);
  int32_t back[2];
  ASSERT_EQ(proto.raw_output_contents(0).size(), sizeof(back));
  std::memcpy(back, proto.raw_output_contents(0).data(), sizeof(back));
  EXPECT_EQ(back[1], -6);
}

TEST(GrpcCodec, StatusCodesFollowTheSharedTable) {
  EXPECT_EQ(to_grpc_status(invalid_argument("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(to_grpc_status(Status(StatusCode::kNotFound, "x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(to_grpc_status(Status(StatusCode::kResourceExhausted, "x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(to_grpc_status(Status(StatusCode::kDeadlineExceeded, "x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(to_grpc_status(Status::OK()).ok());
}

}  // namespace
}  // namespace pyflame_rt::net
