// The Cerebras wafer-scale engine as numbers: one WseSpec per generation (WSE-2 in the CS-2,
// WSE-3 in the CS-3), every constant named and sourced, plus the cost-model constants the
// placement and the simulator share. Sources are in ../shared/reference/wse.md (public SDK
// documentation, csl-examples and the papers it cites); (derived) marks computed figures,
// (ours) marks choices of this runtime, (calibrated) marks constants fitted to a published
// measurement. No hardware or SDK is reachable here: these numbers are the whole model.
//
//   const WseSpec& s = wse_spec(WseGeneration::kWse3);
//   ASSIGN_OR_RETURN(WseSpec reduced, wse_spec_with_options(s, {{"fabric", "64x48"}}));
//   double us = s.cycles_to_us(12000);
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "graph/status.h"

namespace pyflame_rt {

enum class WseGeneration { kWse2, kWse3 };

struct WseSpec {
  std::string name;  // "wse2", "wse3": the device name
  WseGeneration generation = WseGeneration::kWse3;

  // --- fabric (wse.md "Machine") ---
  int64_t published_pes = 0;  // 850,000 (WSE-2), 900,000 (WSE-3)
  int fabric_width = 0;       // dims given to the compiler: 757 x 996 (WSE-2), 762 x 1176 (WSE-3)
  int fabric_height = 0;
  // Largest user rectangle with host memcpy: 750 x 994 (WSE-2), 755 x 1174 (WSE-3, derived:
  // fabric minus the memcpy columns and rows below). Placement uses this rectangle.
  int usable_width = 0;
  int usable_height = 0;
  // Memcpy adds 3 columns on the west and 2 on the east of the user rectangle; the simulated
  // fabric must be at least width + 7, height + 2 (wse.md "Host I/O").
  int memcpy_west_columns = 3;
  int memcpy_east_columns = 2;
  int fabric_margin_x = 7;
  int fabric_margin_y = 2;

  // --- memory (wse.md "Machine") ---
  int64_t sram_bytes_per_pe = 48 * 1024;  // 48 KB, 8 banks x 6 KB
  int sram_banks = 8;
  int64_t sram_bank_bytes = 6 * 1024;
  // Code, stack, the memcpy runtime and task tables (ours): not published; 8 KB keeps the
  // csl-examples' programs (well under 4 KB of code) with room for the memcpy module.
  int64_t code_reserve_bytes = 8 * 1024;
  int64_t data_bytes_per_pe() const { return sram_bytes_per_pe - code_reserve_bytes; }

  // --- compute (wse.md "Machine", "Cost model") ---
  int simd_fp32 = 1;  // fp32 @fmacs: one lane
  int simd_fp16 = 8;  // 4 on WSE-2, 8 on WSE-3 (partly verified)
  double clock_hz = 850e6;  // the SDK's benchmark scripts convert cycles at 850 MHz
  // Sustained fp32 FMACs per cycle per PE when the operand streams from SRAM once (calibrated):
  // Ltaief et al. SC23, 92.58 PB/s over 35,784,000 CS-2 PEs = ~3 bytes/cycle at 850 MHz, 4 bytes
  // per FMAC -> 0.75. The peak is 1 (two 32-bit reads + one write per cycle).
  double fmacs_per_cycle_fp32 = 0.75;
  double peak_fmacs_per_cycle_fp32 = 1.0;
  // Elementwise/vector ops (@fadds, @fmuls, @fmovs) are bounded by the same SRAM port: one
  // 32-bit result per cycle at peak, the same 0.75 sustained (ours, by analogy with @fmacs).
  double vector_ops_per_cycle = 0.75;
  // Transcendentals (exp, tanh, erf, division) have no DSD builtin: a software routine of
  // about 20 instructions per element (ours).
  double transcendental_cycles = 20;
  // Fixed cost of starting a task/DSD operation (ours, explicit and small: a task activation
  // plus DSD setup is a handful of instructions).
  double task_overhead_cycles = 10;

  // --- fabric links and colours (wse.md "Fabric", "Calibration points") ---
  int wavelet_bytes = 4;  // 32-bit wavelets, one per cycle per link direction
  // Per-hop latency: the simprint tutorial shows neighbours 2 cycles apart; the SDK's timing
  // scripts assume 1. We use 2 (the observed one) for latency, 1 wavelet/cycle for bandwidth.
  double hop_cycles = 2;
  // Luczynski et al. 2024 row reduce: T = max(C, E/N + L) + (2 T_R + 1) D; T_R = router delay.
  double router_delay_cycles = 1;
  int routable_colors = 24;  // ids 0..23
  int memcpy_colors = 6;     // taken by the host memcpy runtime
  int program_colors() const { return routable_colors - memcpy_colors; }  // 18 for us

  // --- host I/O (wse.md "Host I/O") ---
  double io_channel_bits_per_s = 7e9;  // about 7 Gb/s per I/O channel
  int max_io_channels = 16;            // at most 16 channels per program
  double io_transaction_overhead_us = 200;  // per memcpy transaction; commands run one at a time

  // --- published totals (for reports and docs) ---
  double total_sram_bytes = 0;       // 40 GB (WSE-2), 44 GB (WSE-3)
  double memory_bandwidth_bps = 0;   // 20 PB/s, 21 PB/s (bytes/s)
  double fabric_bandwidth_bps = 0;   // 220 Pb/s, 214 Pb/s (bits/s)

  // Systems (wafers) a model may span: 1 unless the "systems" provider option says more.
  int systems = 1;
  int io_channels = 16;  // channels the program uses ("channels" option; cslc --channels)

  int64_t usable_pes() const { return static_cast<int64_t>(usable_width) * usable_height; }
  double cycles_to_us(double cycles) const { return cycles / clock_hz * 1e6; }
  // Host transfer time of `bytes` in one memcpy transaction (wse.md cost model).
  double host_io_us(double bytes) const {
    return bytes * 8 / (io_channels * io_channel_bits_per_s) * 1e6 + io_transaction_overhead_us;
  }
};

// The published generation constants (above) for WSE-2 and WSE-3.
const WseSpec& wse_spec(WseGeneration generation);
// "wse2", "wse3", "wse" (= newest), else kNotFound naming the known ones.
Expected<WseSpec> wse_spec_by_name(const std::string& name);

// `base` with provider options applied: "fabric" = "WxH" (a reduced user rectangle, at most the
// usable one), "generation" = "wse2"/"wse3", "systems" = N (wafers, default 1), "channels" = 1..16,
// "code_reserve" = bytes per PE. Unknown keys are an error naming the known ones.
Expected<WseSpec> wse_spec_with_options(const WseSpec& base, const std::map<std::string, std::string>& options);

}  // namespace pyflame_rt
