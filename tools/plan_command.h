// `pyflame-rt plan`: places a model on a device and prints its report; draws the placement.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pyflame_rt {


// The placement drawn on the fabric (plan_svg.cpp): one rectangle per partition, labelled with
// its id, PEs and ops; systems side by side. `report` is Executable::report_json() parsed.
std::string plan_svg(const nlohmann::json& report);

// The report as the table `plan` prints (plan_command.cpp).
std::string plan_table(const nlohmann::json& report);

}  // namespace pyflame_rt
