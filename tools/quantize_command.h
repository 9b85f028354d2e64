// `pyflame-rt quantize`: writes a quantized (QDQ int8, dynamic int8 or fp16/bf16-weight) ONNX
// model. The quantizer is Python (pyflame_rt.quantization: calibration statistics use numpy at
// quantization time only), so this command hands its words to that module's main().
#pragma once

#include <string>
#include <vector>

namespace pyflame_rt {

// args: the words after "quantize" (MODEL --calib DIR -o OUT [--mode] [--dtype] [--method] ...).
int quantize_command(const std::vector<std::string>& args);

}  // namespace pyflame_rt
