#include "npy_io.h"

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

Expected<Tensor> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, "cannot open .npy file '", path, "'");
  char magic[8];
  in.read(magic, 8);
  if (in.gcount() != 8 || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
    return invalid_argument("'", path, "' is not a .npy file (bad magic)");
  }
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t len16 = 0;
    in.read(reinterpret_cast<char*>(&len16), 2);
    header_len = len16;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  in.read(&header[0], header_len);
  std::string descr = header_field(header, "descr");
  if (header_field(header, "fortran_order") == "True") {
    return invalid_argument("'", path, "': Fortran-order arrays are not supported; save with C order");
  }
  DType dtype = DType::kUndefined;
  for (const auto& t : kTypes) if (descr == t.descr) dtype = t.dtype;
  if (dtype == DType::kUndefined) {
    return invalid_argument("'", path, "': unsupported .npy dtype '", descr, "'");
  }
  Dims dims;
  std::stringstream shape(header_field(header, "shape"));
  std::string item;
  while (std::getline(shape, item, ',')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    dims.push_back(std::stoll(item));
  }
  Tensor t(dtype, dims);
  in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
  if (static_cast<size_t>(in.gcount()) != t.nbytes()) {
    return invalid_argument("'", path, "' is truncated: expected ", t.nbytes(), " data bytes for ",
                            t.summary(), ", got ", in.gcount());
  }
  return t;
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
