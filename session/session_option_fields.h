// SessionOptions by field name: the table bindings use to read and write options, so a field
// is declared once (session_options.h) and listed once (session_option_fields.cpp).
//
//   for (const OptionField& f : session_option_fields()) std::cout << f.name << " " << f.kind;
//   SessionOptions o;
//   RETURN_IF_ERROR(set_session_option(o, "num_threads", OptionValue(int64_t{4})));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "session/session_options.h"

namespace pyflame_rt {

// A field's value, by kind: "bool", "int", "str", "str_list", "int_map" (str -> int),
// "str_map" (str -> str). OptLevel is an "int".
using OptionValue = std::variant<bool, int64_t, std::string, std::vector<std::string>,
                                 std::map<std::string, int64_t>, std::map<std::string, std::string>>;

struct OptionField {
  std::string name;
  std::string kind;
  std::string doc;  // one line
  std::function<void(SessionOptions&, const OptionValue&)> set;
  std::function<OptionValue(const SessionOptions&)> get;
};

const std::vector<OptionField>& session_option_fields();

// Sets one field; InvalidArgument for an unknown name or a value of another kind (naming
// the field, its kind and what was given). Ranges are checked by SessionOptions::validate().
Status set_session_option(SessionOptions& options, const std::string& name, const OptionValue& value);

}  // namespace pyflame_rt
