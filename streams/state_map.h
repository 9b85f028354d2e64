// Which model outputs carry the next value of which inputs (hidden state fed back between
// chunks): found from names and shapes (h0/hn, h/h_out, state_in/state_out, c0/cn), else by
// dtype and shape alone when exactly one later output fits a later input (h -> output1), or given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/status.h"

namespace pyflame_rt {

struct StatePair {
  std::string input;   // fed with ...
  std::string output;  // ... this output of the previous run
};

// `given` maps state input -> output; when empty the pairs are detected. Errors name the
// model's inputs and outputs when a given name is unknown or dtypes/shapes do not match; an
// ambiguous detection lists the pairs it considered.
Expected<std::vector<StatePair>> find_state_pairs(const std::vector<ValueInfo>& inputs,
                                                  const std::vector<ValueInfo>& outputs,
                                                  const std::map<std::string, std::string>& given);

}  // namespace pyflame_rt
