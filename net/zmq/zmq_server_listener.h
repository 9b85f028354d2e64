// The ZeroMQ listener as a net::Server Listener, sharing the server's SequenceTable.
#pragma once

#include <memory>

#include "net/server.h"
#include "net/sequence/sequence_table.h"

namespace pyflame_rt::net {

Expected<std::unique_ptr<Listener>> start_zmq_listener(std::shared_ptr<ModelRepository> repository,
                                                       std::shared_ptr<SequenceTable> sequences,
                                                       const std::string& pull_endpoint,
                                                       const std::string& pub_endpoint,
                                                       const std::string& sub_endpoint = "");

}  // namespace pyflame_rt::net
