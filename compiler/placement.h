// Placement: which device runs each node, as ONNX Runtime does it: the devices, in the
// session's provider order, each claim (Device::claim) the nodes they can run among those not
// yet taken; then the graph is cut into partitions, each a maximal run of nodes on one device,
// in a topological order that keeps a device's nodes together (fewer device crossings).
//
//   std::vector<const Device*> devices = {wse.get(), cpu.get()};
//   ASSIGN_OR_RETURN(Placement placed, place_graph(graph, devices));
//   placed.partitions[0].device     // index into `devices`
//   placed.declined                 // "Loop 'l1': not on wse3: op Loop is not supported"
#pragma once

#include <string>
#include <vector>

#include "compiler/partitioner.h"
#include "devices/device.h"

namespace pyflame_rt {

struct PlacedPartition {
  Partition part;     // its own graph (inputs, outputs, initializers) and carry
  size_t device = 0;  // index into the devices given to place_graph
};

struct Placement {
  std::vector<PlacedPartition> partitions;  // in run order
  // Nodes a device of higher priority looked at and refused, with its reason, for nodes that
  // went to a later device: what get_fallback_nodes() adds to the devices' own fallbacks.
  std::vector<std::string> declined;
};

// kInvalidArgument for no devices; kNotImplemented naming the node and every device's reason
// when no device takes a node. A graph with control flow (If/Loop/Scan) is not split: it goes
// whole to the first device that takes every node.
Expected<Placement> place_graph(const Graph& graph, const std::vector<const Device*>& devices);

}  // namespace pyflame_rt
