#include "npy_io.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pyflame_rt {

namespace {

struct NpyType { const char* descr; DType dtype; };
const NpyType kTypes[] = {
    {"<f4", DType::kFloat32}, {"<f8", DType::kFloat64}, {"<f2", DType::kFloat16},
    {"|i1", DType::kInt8}, {"<i2", DType::kInt16}, {"<i4", DType::kInt32}, {"<i8", DType::kInt64},
    {"|u1", DType::kUInt8}, {"<u2", DType::kUInt16}, {"<u4", DType::kUInt32},
    {"<u8", DType::kUInt64}, {"|b1", DType::kBool},
};

// Value of `key` in the header dict, e.g. 'descr': '<f4' -> <f4; 'shape': (2, 3) -> 2, 3
std::string header_field(const std::string& header, const std::string& key) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t colon = header.find(':', k);
  size_t start = header.find_first_not_of(" ", colon + 1);
  if (start == std::string::npos) return "";
  char open = header[start];
  char close = open == '(' ? ')' : open;
  if (open == '\'' || open == '(') {
    size_t end = header.find(close, start + 1);
    return header.substr(start + 1, end - start - 1);
  }
  size_t end = header.find_first_of(",}", start);
  return header.substr(start, end - start);
}

}  // namespace

Expected<Tensor> read_npy_bytes(const std::string& bytes, const std::string& what) {
  // Every field is checked against the bytes actually present before anything is allocated:
  // a header announcing (1 << 40) rows, a negative dim or a header longer than the file is an
  // error naming the file, never an allocation or a read past the end.
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) {
    return invalid_argument("'", what, "' is not a .npy file (bad magic)");
  }
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t header_len = 0, header_start = 0;
  if (u[6] == 1) {
    header_len = u[8] | (u[9] << 8);
    header_start = 10;
  } else if ((u[6] == 2 || u[6] == 3) && bytes.size() >= 12) {
    header_len = u[8] | (u[9] << 8) | (static_cast<size_t>(u[10]) << 16) | (static_cast<size_t>(u[11]) << 24);
    header_start = 12;
  } else {
    return invalid_argument("'", what, "': unsupported .npy format version ", int{u[6]});
  }
  if (header_len > bytes.size() - header_start) {
    return invalid_argument("'", what, "': .npy header of ", header_len, " bytes runs past the end of the file (",
                            bytes.size(), " bytes)");
  }
  std::string header = bytes.substr(header_start, header_len);
  std::string descr = header_field(header, "descr");
  if (header_field(header, "fortran_order") == "True") {
    return invalid_argument("'", what, "': Fortran-order arrays are not supported; save with C order");
  }
  // Big-endian data ('>f4') is read by value: byte-swapped, never taken as little-endian.
  bool swap = descr.size() == 3 && descr[0] == '>' && descr[2] != '1';
  if (swap) descr[0] = '<';
  if (descr.size() == 3 && descr[0] == '>' && descr[2] == '1') descr[0] = '|';
  DType dtype = DType::kUndefined;
  for (const auto& t : kTypes) if (descr == t.descr) dtype = t.dtype;
  if (dtype == DType::kUndefined) {
    return invalid_argument("'", what, "': unsupported .npy dtype '", header_field(header, "descr"), "'");
  }
  Dims dims;
  std::stringstream shape(header_field(header, "shape"));
  std::string item;
  uint64_t count = 1;
  while (std::getline(shape, item, ',')) {
    size_t first = item.find_first_not_of(" "), last = item.find_last_not_of(" L");
    if (first == std::string::npos) continue;
    if (last == std::string::npos || last < first) {  // only L suffixes: " L" (found by fuzzing)
      return invalid_argument("'", what, "': .npy shape entry '", item, "' is not a non-negative integer");
    }
    int64_t d = -1;
    auto [end, ec] = std::from_chars(item.data() + first, item.data() + last + 1, d);
    if (ec != std::errc() || end != item.data() + last + 1 || d < 0) {
      return invalid_argument("'", what, "': .npy shape entry '", item, "' is not a non-negative integer");
    }
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count)) count = UINT64_MAX;
    dims.push_back(d);
  }
  size_t data_start = header_start + header_len;
  uint64_t need = 0;
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(dtype_size(dtype)), &need) ||
      need != bytes.size() - data_start) {
    return invalid_argument("'", what, "': shape ", dims_to_string(dims), " of ", dtype_name(dtype), " needs ",
                            count == UINT64_MAX ? std::string("more than 2^64") : std::to_string(count),
                            " elements, the file holds ", bytes.size() - data_start, " data bytes");
  }
  Tensor t(dtype, dims);
  const char* src = bytes.data() + data_start;
  auto* dst = static_cast<char*>(t.raw_data());
  if (swap) {
    size_t item_size = dtype_size(dtype);
    for (size_t i = 0; i < need; i += item_size) {
      for (size_t k = 0; k < item_size; ++k) dst[i + k] = src[i + item_size - 1 - k];
    }
  } else if (need) {
    std::memcpy(dst, src, need);
  }
  if (dtype == DType::kBool) {  // a bool object holds only 0 or 1
    for (size_t i = 0; i < need; ++i) dst[i] = dst[i] != 0;
  }
  return t;
}

Expected<Tensor> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, "cannot open .npy file '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return read_npy_bytes(ss.str(), path);
}

Status write_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  for (const auto& e : kTypes) if (e.dtype == t.dtype()) descr = e.descr;
  if (!descr) return not_implemented("cannot write ", dtype_name(t.dtype()), " tensors as .npy");
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : (i + 1 < t.rank() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return make_status(StatusCode::kNoSuchFile, "cannot write '", path, "'");
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
  return out ? Status::OK() : make_status(StatusCode::kFail, "write to '", path, "' failed");
}

}  // namespace pyflame_rt
