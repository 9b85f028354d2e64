// assign_tasks: the program's shared tasks and their ids, and the queues of its colours.
//
// Ops share tasks: one data task per received colour and one local task per kind ("t_step",
// "t_done"), each dispatching on `cur_op` to the op that is running, so the number of task
// ids does not grow with the number of ops. Local task ids avoid the colour ids in use (on
// WSE-2 a data task's id is its colour's id) and the ids the memcpy runtime reserves.
#include <algorithm>
#include <set>

#include "compiler/csl/lowering.h"
#include "compiler/csl/writers.h"

namespace pyflame_rt::csl {

Status assign_tasks(CslProgram& prog, const CslBudget& budget) {
  prog.tasks.clear();
  prog.input_queue.clear();
  prog.output_queue.clear();
  prog.library_queues.clear();
  prog.library_tasks.clear();
  std::set<int> used_ids(prog.colors.begin(), prog.colors.end());
  // Ids 8..20 and 24..26 are the local task ids the SDK examples use; 21-23 and 27-31 belong to
  // the memcpy runtime.
  std::vector<int> pool;
  for (int id = 8; id <= 20; ++id) pool.push_back(id);
  for (int id = 24; id <= 26; ++id) pool.push_back(id);
  auto next_id = [&](const std::string& what) -> Expected<int> {
    for (int id : pool) {
      if (!used_ids.count(id)) {
        used_ids.insert(id);
        return id;
      }
    }
    return make_status(StatusCode::kResourceExhausted, "partition ", prog.partition, ": no local task id left for ",
                       what, " (", pool.size(), " usable ids, ", prog.colors.size(), " taken by colours)");
  };

  // Queues: per colour one input queue if any PE receives on it, one output queue if any PE sends.
  std::set<int> recv, send, data;
  for (const OpCode& op : prog.ops) {
    for (const ColorUse& u : op.uses) {
      (u.receive ? recv : send).insert(u.color);
      if (u.data_task) data.insert(u.color);
    }
  }
  int next_iq = budget.first_queue, next_oq = budget.first_queue;
  if (std::find(prog.imports.begin(), prog.imports.end(), "collectives") != prog.imports.end()) {
    // <collectives_2d> takes two queues per dimension; they are kept out of both pools.
    for (int i = 0; i < 4; ++i) prog.library_queues.push_back(budget.first_queue + i);
    next_iq = next_oq = budget.first_queue + 4;
    for (const char* t : {"t_c2d_x0", "t_c2d_x1", "t_c2d_y0", "t_c2d_y1"}) {
      ASSIGN_OR_RETURN(int id, next_id(t));
      prog.library_tasks[t] = id;
    }
    // SUMMA's own tasks only when a SUMMA op runs (attention and the GRU use t_coll).
    const bool summa = std::any_of(prog.ops.begin(), prog.ops.end(), [](const OpCode& o) { return o.lowering == "summa"; });
    for (const char* t : {"t_summa", "t_xdone", "t_ydone"}) {
      if (!summa) break;
      ASSIGN_OR_RETURN(int id, next_id(t));
      prog.tasks.push_back({t, false, -1, id});
    }
  }
  for (int c : recv) {
    if (next_iq > budget.last_queue) {
      return make_status(StatusCode::kResourceExhausted, "partition ", prog.partition, ": ", recv.size(),
                         " received colours need input queues, only ", budget.last_queue - budget.first_queue + 1,
                         " are free of the memcpy runtime");
    }
    prog.input_queue[c] = next_iq++;
  }
  for (int c : send) {
    if (next_oq > budget.last_queue) {
      return make_status(StatusCode::kResourceExhausted, "partition ", prog.partition, ": ", send.size(),
                         " sent colours need output queues, only ", budget.last_queue - budget.first_queue + 1,
                         " are free of the memcpy runtime");
    }
    prog.output_queue[c] = next_oq++;
  }
  for (int c : data) prog.tasks.push_back({"recv_c" + std::to_string(c), true, c, prog.input_queue[c]});
  std::set<std::string> kinds;
  for (const OpCode& op : prog.ops) {
    for (const Handler& h : op.handlers) {
      if (h.task.rfind("t_", 0) == 0 && h.task != "t_summa") kinds.insert(h.task);
    }
  }
  for (const std::string& k : kinds) {
    ASSIGN_OR_RETURN(int id, next_id(k));
    prog.tasks.push_back({k, false, -1, id});
  }
  return Status::OK();
}

}  // namespace pyflame_rt::csl
