#include "graph/pfm_format.h"

namespace pyflame_rt {

bool is_pfm_bytes(const std::string& bytes) { return bytes.rfind("PFM1", 0) == 0; }
Status save_pfm(const Graph&, const std::string&) { return not_implemented(".pfm save"); }
Expected<std::string> serialize_pfm(const Graph&) { return not_implemented(".pfm save"); }
Expected<Graph> load_pfm_file(const std::string&) { return not_implemented(".pfm load"); }
Expected<Graph> load_pfm_bytes(const std::string&) { return not_implemented(".pfm load"); }

}  // namespace pyflame_rt
