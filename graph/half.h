// IEEE float16 and bfloat16 storage types with float conversion.
//
// Kernels compute in float and store in these 16-bit types; conversions round to nearest even,
// and keep NaN/Inf, so results match numpy's float16 and torch's bfloat16.
#pragma once

#include <cstdint>
#include <cstring>

namespace pyflame_rt {

inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  explicit Float16(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }  // NOLINT: implicit like a real float type

  static uint16_t from_float(float f) {
    uint32_t x = float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) {  // Inf or NaN
      return static_cast<uint16_t>(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0u));
    }
    if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> Inf
    if (mag < 0x38800000u) {  // subnormal or zero in half
      // Half subnormals count units of 2^-24; value = mant * 2^(exp-150), so shift by 126-exp,
      // rounding to nearest even.
      if (mag < 0x33000000u) return static_cast<uint16_t>(sign);
      uint32_t exp = mag >> 23;
      uint32_t mant = (mag & 0x7fffffu) | 0x800000u;
      uint32_t s = 126 - exp;
      uint32_t half_mant = mant >> s;
      uint32_t rem = mant & ((1u << s) - 1);
      uint32_t halfway = 1u << (s - 1);
      if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
      return static_cast<uint16_t>(sign | half_mant);
    }
    uint32_t rounded = mag + 0xfffu + ((mag >> 13) & 1u);  // round to nearest even
    uint32_t h = (rounded >> 13) - ((127 - 15) << 10);
    return static_cast<uint16_t>(sign | h);
  }
  static float to_float(uint16_t h) {
    uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
      if (mant == 0) return bits_float(sign);
      float v = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
      return sign ? -v : v;
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
  }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }  // NOLINT

  static uint16_t from_float(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
    uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(rounded >> 16);
  }
  static float to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }
};

}  // namespace pyflame_rt
