// DeviceRegistry: every device this build can create, by name and by ONNX Runtime provider
// name (ggml_backend_register's shape). Sessions resolve `providers=[...]` and
// SessionOptions.device through it; tools list it.
//
//   DeviceRegistry& reg = DeviceRegistry::global();       // built-in devices registered
//   const DeviceEntry* e = reg.find("CPUExecutionProvider");
//   DeviceConfig cfg;  cfg.num_threads = 1;
//   ASSIGN_OR_RETURN(std::unique_ptr<Device> cpu, reg.create("cpu", cfg));
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"

namespace pyflame_rt {

// Everything a session tells the device it creates (one struct for every device: fields a
// device does not use are ignored by it).
struct DeviceConfig {
  int num_threads = 0;             // CPU intra-op threads; 0 = one per core
  bool parallel_branches = false;  // execution_mode "parallel"
  // enable_memory_reuse: an output's buffer is reused, once its last reader ran, for a later
  // output; false: every output its own allocation, freed when released.
  bool memory_reuse = true;
  // memory_pool "arena": a run's buffers are kept for later runs; false ("default"): returned
  // to the system at the end of each run. Ignored without memory_reuse.
  bool memory_arena = true;
  // Denormal floats flushed to zero in the CPU kernels (cpu/denormals.h): the session's
  // "session.set_denormal_as_zero" config entry is "1".
  bool flush_denormals = false;
  std::string artifacts_dir;  // where a device writes what it generates (the wafer's CSL)
  // Provider options (ONNX Runtime's provider_options), device-specific keys and values; a
  // device rejects keys it does not know with an error naming the key and the known ones.
  std::map<std::string, std::string> options;
  // Where a device leaves warnings for the session to log and report (an option it accepts
  // but ignores, say); may be null.
  std::vector<std::string>* warnings = nullptr;
};

struct DeviceEntry {
  std::string name;      // "cpu", "wse3"
  std::string provider;  // "CPUExecutionProvider"; several entries may share one provider
  std::string summary;   // one line for listings
  bool listed = true;    // false: internal (the reference device), not in available providers
  std::function<Expected<std::unique_ptr<Device>>(const DeviceConfig&)> create;
};

class DeviceRegistry {
 public:
  // The process-wide registry with the built-in devices (register_builtin_devices) in it.
  static DeviceRegistry& global();

  // kInvalidArgument if the name is taken.
  Status add(DeviceEntry entry);
  // By device name ("wse2") or, failing that, by provider name (first entry registered for it).
  const DeviceEntry* find(const std::string& name_or_provider) const;
  Expected<std::unique_ptr<Device>> create(const std::string& name_or_provider, const DeviceConfig& config) const;
  // Provider names of the listed entries, in registration order, without repeats.
  std::vector<std::string> available_providers() const;
  std::vector<std::string> device_names() const;

 private:
  std::vector<DeviceEntry> entries_;
};

// Registers ref, cpu and the wafer devices (explicit, not static initialisers: a static
// library drops objects nothing references).
void register_builtin_devices(DeviceRegistry& registry);

}  // namespace pyflame_rt
