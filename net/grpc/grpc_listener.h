// The gRPC listener as a net::Server Listener. It shares the server's SequenceTable with the
// ZeroMQ listener, so a sequence id means the same stream whichever transport it came from.
#pragma once

#include <memory>

#include "net/server.h"
#include "net/sequence/sequence_table.h"

namespace pyflame_rt::net {

// Port 0 picks a free one; *bound_port gets the real one.
Expected<std::unique_ptr<Listener>> start_grpc_listener(std::shared_ptr<ModelRepository> repository,
                                                        std::shared_ptr<SequenceTable> sequences,
                                                        const std::string& host, int port, int max_concurrent_rpcs,
                                                        int* bound_port);
}  // namespace pyflame_rt::net
