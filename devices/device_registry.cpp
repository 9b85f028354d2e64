#include "devices/device_registry.h"

namespace pyflame_rt {

DeviceRegistry& DeviceRegistry::global() {
  static DeviceRegistry* registry = [] {
    auto* r = new DeviceRegistry();  // never destroyed: devices may be created during exit
    register_builtin_devices(*r);
    return r;
  }();
  return *registry;
}

Status DeviceRegistry::add(DeviceEntry entry) {
  if (entry.name.empty() || !entry.create) return invalid_argument("device entry: a name and a factory are required");
  for (const auto& e : entries_) {
    if (e.name == entry.name) return invalid_argument("device '", entry.name, "' is already registered");
  }
  entries_.push_back(std::move(entry));
  return Status::OK();
}

const DeviceEntry* DeviceRegistry::find(const std::string& name_or_provider) const {
  for (const auto& e : entries_) if (e.name == name_or_provider) return &e;
  for (const auto& e : entries_) if (e.provider == name_or_provider) return &e;
  return nullptr;
}

Expected<std::unique_ptr<Device>> DeviceRegistry::create(const std::string& name_or_provider,
                                                         const DeviceConfig& config) const {
  const DeviceEntry* e = find(name_or_provider);
  if (!e) {
    std::string known;
    for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
    return make_status(StatusCode::kNotFound, "unknown device '", name_or_provider, "' (known: ", known, ")");
  }
  return e->create(config);
}

std::vector<std::string> DeviceRegistry::available_providers() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (!e.listed) continue;
    bool seen = false;
    for (const auto& p : out) seen |= p == e.provider;
    if (!seen) out.push_back(e.provider);
  }
  return out;
}

std::vector<std::string> DeviceRegistry::device_names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

}  // namespace pyflame_rt
