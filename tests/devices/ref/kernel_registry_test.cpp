// KernelRegistry: registrations keyed by (domain, op, opset range, dtypes), as ONNX Runtime's
// versioned typed kernels; the lookup picks the registration covering the node.
#include "devices/ref/kernel.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace {

Status old_clip(KernelContext&) { return Status::OK(); }
Status new_clip(KernelContext&) { return Status::OK(); }
Status int_only(KernelContext&) { return Status::OK(); }

TEST(KernelRegistryTest, OpsetRangesAndDtypesSelectTheKernel) {
  KernelRegistry r;
  r.add(KernelDef{"", "Clip", 1, 10}, old_clip);
  r.add(KernelDef{"ai.onnx", "Clip", 11, 13, {DType::kFloat32}}, new_clip);
  r.add(KernelDef{"", "Clip", 11, 13, {DType::kInt32}}, int_only);
  EXPECT_EQ(r.find("", "Clip", 6), &old_clip);
  EXPECT_EQ(r.find("", "Clip", 12, DType::kFloat32), &new_clip);
  EXPECT_EQ(r.find("ai.onnx", "Clip", 12, DType::kInt32), &int_only);
  EXPECT_EQ(r.find("", "Clip", 12, DType::kFloat16), nullptr);  // no float16 registration
  EXPECT_EQ(r.find("", "Clip", 14), nullptr);                    // past every range
  EXPECT_NE(r.find("", "Clip"), nullptr);                        // any version, any dtype
  EXPECT_EQ(r.find("com.example", "Clip"), nullptr);
}

TEST(KernelRegistryTest, ReferenceRegistryHasEveryOpsetOfRelu) {
  EXPECT_NE(KernelRegistry::reference().find("", "Relu", 6), nullptr);
  EXPECT_NE(KernelRegistry::reference().find("", "Relu", 14, DType::kFloat32), nullptr);
}

}  // namespace
}  // namespace pyflame_rt
