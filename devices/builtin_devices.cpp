// The devices every build has, registered in priority-neutral order (placement follows the
// session's providers list, not this order). Explicit calls, not static initialisers: a static
// library drops object files nothing references.
#include "devices/device_registry.h"

namespace pyflame_rt {

DeviceEntry ref_device_entry();
DeviceEntry cpu_device_entry();
DeviceEntry wse3_device_entry();
DeviceEntry wse2_device_entry();
DeviceEntry wse_alias_device_entry();

void register_builtin_devices(DeviceRegistry& registry) {
  (void)registry.add(cpu_device_entry());
  (void)registry.add(ref_device_entry());
  // The wafer: newest first, so provider CerebrasExecutionProvider resolves to wse3.
  (void)registry.add(wse3_device_entry());
  (void)registry.add(wse2_device_entry());
  (void)registry.add(wse_alias_device_entry());
}

}  // namespace pyflame_rt
