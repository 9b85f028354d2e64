// A plan file: a compiled model (session/compiled_model.h) ready to run, as the plan cache
// (session/plan_cache.h) and `pyflame-rt compile` write it. Layout:
//
//   header (128 bytes): magic "PFRTPLAN", format version, the key it was stored under, the
//                       sizes and offsets of the two sections, an XXH3-64 of the description
//   description:        plan.PlanMeta protobuf (session/plan_file.proto): the compiled model
//                       without its large weights, where they lie, the model's metadata, an
//                       XXH3-64 per 4 MiB chunk of the data section
//   data (64-aligned):  the weights, each 64-byte aligned, so a reader maps the file and its
//                       tensors view the mapping instead of parsing and copying them; then
//                       the packed weights (devices/packed_weights.h), likewise. A cache
//                       entry leaves out weights only packed kernels read (PlanContents::left_out).
//
// Every byte is checked on read (a flipped bit anywhere is a checksum mismatch), the chunks
// on all cores: hashing is most of what a hit costs.
//
//   RETURN_IF_ERROR(write_plan_file(path, key, contents));   // atomic: temp file + rename
//   ASSIGN_OR_RETURN(PlanContents plan, read_plan_file(path, key));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/model_metadata.h"
#include "graph/status.h"
#include "session/compiled_model.h"

namespace pyflame_rt {

// Bump when the file layout or anything a plan holds changes meaning (kernels included:
// a plan stores partitions after the device passes).
constexpr uint32_t kPlanFormatVersion = 2;  // 2: chunk checksums, left-out weights

struct PlanContents {
  std::string compiled;                 // CompiledModel::serialize(&weights) bytes
  std::vector<ExternalTensor> weights;  // after a read: views of the mapped file
  ModelMetadata metadata;
  // Per partition index: weights its kernels packed for the plan's shapes (CompiledModel::
  // export_packed); after a read, views of the mapped file. Empty for a plan not
  // shape-specialised.
  std::map<size_t, PackedWeights> packed;
  // Weights whose bytes the file leaves out because every kernel reading them runs on its
  // packed blob (leave_out_packed_weights, session/plan_weights.h): written as dtype and dims
  // only; after a read they are in `weights` as stand-ins (devices/weight_stand_in.h).
  std::vector<ExternalTensor> left_out;
};

// What a plan depends on in the machine: oneDNN's effective ISA (the kernels it picks and the
// blocked layouts they want), e.g. "dnnl-isa-0x3e7" ("" when oneDNN cannot say).
std::string plan_cpu_id();

// True when the file at `path` starts with the plan magic.
bool is_plan_file(const std::string& path);

// Writes a temporary file beside `path` and renames it over: readers and concurrent writers
// only ever see whole files. Errors name the path (a full disk, a read-only directory).
Status write_plan_file(const std::string& path, const std::string& key, const PlanContents& contents);

// Maps and checks the file. `expected_key` empty accepts any key (an ahead-of-time plan).
// kNoSuchFile when it does not exist; kInvalidProtobuf for a truncated or corrupt file, a
// checksum mismatch, another format version, another key, or another CPU, with the reason.
Expected<PlanContents> read_plan_file(const std::string& path, const std::string& expected_key);

}  // namespace pyflame_rt
