// WindowAssembler: turns chunks of any length into the windows a model consumes.
//
// Windowed (window > 0): samples accumulate along the time axis; each time `window` samples
// are buffered a window is cut, and the last `overlap` samples stay as the start of the next
// one (hop = window - overlap). Pass-through (window == 0): every chunk is one window,
// preceded by the last `overlap` samples of the previous chunk as context.
// Each window carries how many samples at its front repeat the previous window (to be
// trimmed from time-aligned outputs) and how many at its end are zero padding (flush only).
#pragma once

#include <cstdint>
#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {

struct Window {
  Tensor samples;
  int64_t repeated_front = 0;  // samples already seen in the previous window
  int64_t padded_back = 0;     // zeros added to fill the last window
};

class WindowAssembler {
 public:
  WindowAssembler(int64_t window, int64_t overlap, size_t time_axis)
      : window_(window), overlap_(overlap), axis_(time_axis) {}

  // Appends a chunk (dims other than the time axis already checked) and returns the windows
  // it completed, oldest first.
  std::vector<Window> push(const Tensor& chunk);
  // End of stream: the samples not yet covered by a window, as one last window (zero-padded
  // to a fixed window when `pad_to_window`). Empty when nothing is left. Then reset().
  std::vector<Window> flush(bool pad_to_window);
  void reset();

  int64_t buffered() const { return buffer_.defined() ? buffer_.dim(axis_) : 0; }
  int64_t window() const { return window_; }
  int64_t overlap() const { return overlap_; }
  size_t time_axis() const { return axis_; }

 private:
  int64_t window_;
  int64_t overlap_;
  size_t axis_;
  Tensor buffer_;       // samples not yet consumed (starts with the retained overlap)
  bool started_ = false;  // a window was emitted since the last reset
};

}  // namespace pyflame_rt
