// A float buffer per thread and per Tag: 64-byte aligned, grown on demand and kept for the
// thread's life. For kernels that use it once per thread at a time and whose sizes repeat from
// run to run (no allocation per run). Buffers live at the same time need distinct tags
// (Winograd's V/M scratch beside the half weights it expands per channel block).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace pyflame_rt {
namespace cpu {

template <typename Tag>
float* thread_scratch(size_t floats) {
  struct Buffer {
    float* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (buffer.size < floats) {
    std::free(buffer.data);
    buffer.data = nullptr;
    buffer.size = 0;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buffer.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!buffer.data) throw std::bad_alloc();
    buffer.size = floats;
  }
  return buffer.data;
}

}  // namespace cpu
}  // namespace pyflame_rt
