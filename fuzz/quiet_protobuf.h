// Protobuf logs an ERROR line to stderr for every string field with invalid UTF-8 it parses:
// under fuzzing, about one .pfm input in thirty, and 1,727 of the 1,761 lines of a pfm_loader
// log (the CPU it costs was not measurable). The targets call this from LLVMFuzzerInitialize;
// a parse failure still reaches the code under test as a failed parse.
#pragma once

#include <google/protobuf/stubs/logging.h>

inline void quiet_protobuf_logging() { google::protobuf::SetLogHandler(nullptr); }
