#include "streams/window_assembler.h"

#include <algorithm>

#include "streams/tensor_axis.h"

namespace pyflame_rt {

std::vector<Window> WindowAssembler::push(const Tensor& chunk) {
  std::vector<Window> out;
  buffer_ = buffer_.defined() ? concat_along({buffer_, chunk}, axis_) : chunk;
  if (window_ == 0) {  // pass-through: the chunk plus its context
    int64_t context = buffered() - chunk.dim(axis_);
    out.push_back({buffer_, started_ ? context : 0, 0});
    int64_t keep = std::min(overlap_, buffered());
    buffer_ = slice_along(buffer_, axis_, buffered() - keep, keep);
    started_ = true;
    return out;
  }
  int64_t begin = 0;
  while (buffered() - begin >= window_) {
    out.push_back({slice_along(buffer_, axis_, begin, window_), started_ ? overlap_ : 0, 0});
    started_ = true;
    begin += window_ - overlap_;
  }
  if (begin > 0) buffer_ = slice_along(buffer_, axis_, begin, buffered() - begin);
  // The caller's chunk may wrap memory it frees after this call: keep our own copy.
  if (buffer_.shares_buffer_with(chunk)) buffer_ = buffer_.clone();
  return out;
}

std::vector<Window> WindowAssembler::flush(bool pad_to_window) {
  std::vector<Window> out;
  int64_t repeated = started_ ? std::min(overlap_, buffered()) : 0;
  if (window_ > 0 && buffered() > repeated) {
    int64_t pad = pad_to_window ? window_ - buffered() : 0;
    Tensor samples = pad ? pad_along(buffer_, axis_, window_) : buffer_;
    out.push_back({samples, repeated, pad});
  }
  reset();
  return out;
}

void WindowAssembler::reset() {
  buffer_ = Tensor();
  started_ = false;
}

}  // namespace pyflame_rt
