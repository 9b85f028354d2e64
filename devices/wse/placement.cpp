// Placement (placement.h): tiling per op, partition sizing, strategy, packing, colours.
#include "devices/wse/placement.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "devices/wse/cost_model.h"

namespace pyflame_rt {

namespace {

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / std::max<int64_t>(1, b); }

// Per-PE element counts of one op under a split (the fullest PE).
struct Footprint {
  int64_t weight = 0, input = 0, output = 0, scratch = 0;
  int64_t activations() const { return input + output + scratch; }
};

// LayerNorm and softmax: rows (M) over PE rows/replicas, the normalised extent (K) across
// columns, partial statistics reduced EAST and broadcast back WEST.
bool is_row_reduce(const MeshOp& op) {
  return op.op_type == "LayerNormalization" || op.kind == MeshOpKind::kSoftmax || op.op_type == "GlobalAveragePool" ||
         op.op_type == "GlobalMaxPool";
}

const TensorTiling* find_role(const MeshOp& op, const char* role) {
  for (const auto& t : op.tensors) if (t.role == role) return &t;
  return nullptr;
}

Footprint footprint(const MeshOp& op, const MeshSplit& s) {
  Footprint f;
  const GemmView& g = op.gemm;
  const int64_t mt = cdiv(g.m, s.m_parts), kt = cdiv(g.k, s.k_parts), nt = cdiv(g.n, s.n_parts);
  switch (op.kind) {
    case MeshOpKind::kGemm: {
      f.weight = kt * nt + (find_role(op, "bias") ? nt : 0);
      f.input = mt * kt;
      f.output = mt * nt;  // the accumulator; the last column's is the result
      break;
    }
    case MeshOpKind::kConv: {
      const TensorTiling* x = find_role(op, "input");
      const TensorTiling* w = find_role(op, "weight");
      const int64_t area = w->dims[2] * w->dims[3];
      const int64_t cin_g = w->dims[1];
      const int64_t kc = cdiv(cin_g, s.k_parts);  // K is split on input-channel boundaries
      f.weight = kc * area * nt + (find_role(op, "bias") ? nt : 0);
      // Input pixels of this PE's output pixels, plus a halo of (kh - 1) input rows.
      const int64_t in_pixels = x->dims[0] * x->dims[2] * x->dims[3];
      const int64_t halo = (w->dims[2] - 1) * x->dims[3];
      const int64_t ng = std::max<int64_t>(1, g.n / g.groups);  // out channels per group
      const int64_t groups_here = g.groups == 1 ? 1 : std::min<int64_t>(g.groups, cdiv(nt, ng) + 1);
      f.input = (cdiv(in_pixels, s.m_parts) + halo) * kc * groups_here;
      f.output = mt * nt;
      if (find_role(op, "residual")) f.input += mt * nt;
      break;
    }
    case MeshOpKind::kAttention: {
      // Rows: heads (n), columns: keys (k), replicas: query blocks (m).
      const int64_t dk = g.n / std::max<int64_t>(1, g.groups);
      const int64_t hp = cdiv(g.groups, s.n_parts);
      f.weight = 0;
      f.input = 2 * kt * dk * hp + mt * dk * hp;  // K and V blocks, the queries
      f.output = mt * dk * hp;
      f.scratch = mt * kt;  // scores of one head at a time
      break;
    }
    case MeshOpKind::kRecurrent: {
      const TensorTiling* x = find_role(op, "input");
      f.weight = kt * nt + 2 * nt;  // W|R column blocks and both biases
      f.input = x->dims[0] * x->dims[1] * cdiv(x->dims[2], s.k_parts);
      f.output = x->dims[0] * x->dims[1] * nt / 3 + nt;  // this row's hidden outputs, gates
      f.scratch = nt;
      break;
    }
    default: {
      if (is_row_reduce(op)) {
        f.weight = op.op_type == "LayerNormalization" ? 2 * kt : 0;
        f.input = mt * kt;
        f.output = op.kind == MeshOpKind::kPool ? mt : mt * kt;
        f.scratch = 2 * mt;
        break;
      }
      // Light ops spread their elements over the PEs; small weights (LayerNorm's gamma and
      // beta, a bias) are replicated where needed.
      int64_t in = 0;
      for (const auto& t : op.tensors) {
        if (t.role == "input") in += num_elements(t.dims);
        if (t.role == "weight") f.weight += std::min<int64_t>(num_elements(t.dims), std::max<int64_t>(1, g.k));
      }
      const TensorTiling* y = find_role(op, "output");
      f.input = cdiv(in, s.m_parts);
      f.output = cdiv(num_elements(y->dims), s.m_parts);
      break;
    }
  }
  return f;
}

// Split candidates for a dimension of extent `d` over at most `room` PEs: powers of two,
// divisors of d, and the largest possible.
std::vector<int> candidates(int64_t d, int room) {
  std::set<int> c;
  int top = static_cast<int>(std::min<int64_t>(d, room));
  for (int v = 1; v <= top; v *= 2) c.insert(v);
  for (int v = 1; v <= top; ++v) if (d % v == 0) c.insert(v);
  if (top >= 1) c.insert(top);
  std::vector<int> out(c.begin(), c.end());
  if (out.size() > 48) {  // keep the search small: a spread of them
    std::vector<int> thin;
    for (size_t i = 0; i < out.size(); i += out.size() / 48 + 1) thin.push_back(out[i]);
    thin.push_back(out.back());
    out = thin;
  }
  return out;
}

void fill_tilings(MeshOp& op, int w, int h) {
  const MeshSplit& s = op.split;
  for (TensorTiling& t : op.tensors) {
    t.row_axis = t.col_axis = -1;
    t.row_parts = t.col_parts = 1;
    t.replicated.clear();
    int rank = static_cast<int>(t.dims.size());
    if (op.kind == MeshOpKind::kGemm || op.kind == MeshOpKind::kRecurrent) {
      if (t.role == "weight") {  // W[K, N]: K across columns, N down rows, copied per M replica
        t.col_axis = rank >= 2 ? rank - 2 : 0;
        t.row_axis = rank - 1;
        t.col_parts = s.k_parts;
        t.row_parts = s.n_parts;
        t.replicated = s.m_parts > 1 ? "m" : "";
      } else if (t.role == "bias") {
        t.row_axis = rank - 1;
        t.row_parts = s.n_parts;
        t.replicated = "cols";
      } else if (t.role == "input") {  // x[M, K]: K across columns, broadcast down the rows
        t.col_axis = rank - 1;
        t.col_parts = s.k_parts;
        t.replicated = "rows";
      } else {  // y[M, N]: N down rows, leaves from the last column
        t.row_axis = rank - 1;
        t.row_parts = s.n_parts;
      }
    } else if (op.kind == MeshOpKind::kConv) {
      if (t.role == "weight") {  // W[Cout, Cin/g, kh, kw]: Cout down rows, Cin across columns
        t.row_axis = 0;
        t.row_parts = s.n_parts;
        t.col_axis = 1;
        t.col_parts = s.k_parts;
        t.replicated = s.m_parts > 1 ? "m" : "";
      } else if (t.role == "bias") {
        t.row_axis = 0;
        t.row_parts = s.n_parts;
        t.replicated = "cols";
      } else if (t.role == "input") {  // X[N, C, H, W]: C across columns, rows of pixels per replica
        t.col_axis = 1;
        t.col_parts = s.k_parts;
        t.replicated = "rows";
      } else {  // Y / residual: Cout down rows
        t.row_axis = 1;
        t.row_parts = s.n_parts;
      }
    } else if (op.kind == MeshOpKind::kAttention) {
      t.row_axis = rank - 1;  // head columns of the width down the rows
      t.row_parts = s.n_parts;
      t.col_axis = rank >= 2 ? rank - 2 : -1;  // sequence across columns
      t.col_parts = s.k_parts;
    } else if (is_row_reduce(op)) {
      // The normalised (last) axis across k_parts columns, the rows over the replicas.
      t.col_axis = rank - 1;
      t.col_parts = s.k_parts;
      if (t.role == "weight") {
        t.replicated = "rows";
      } else if (rank > 1) {
        t.row_axis = 0;
        t.row_parts = static_cast<int>(std::min<int64_t>(s.m_parts, std::max<int64_t>(1, t.dims[0])));
      }
    } else {
      // Light ops: the flattened elements spread over the whole grid, rows first.
      if (t.role == "weight") {
        t.replicated = "rows";
      } else if (rank > 0) {
        t.row_axis = 0;
        t.row_parts = std::min<int>(h, static_cast<int>(std::max<int64_t>(1, t.dims[0])));
        t.col_axis = rank - 1;
        t.col_parts = std::min<int>(w, static_cast<int>(std::max<int64_t>(1, t.dims.back())));
      }
    }
    int64_t piece = 1;
    for (int a = 0; a < rank; ++a) {
      int parts = a == t.row_axis ? t.row_parts : a == t.col_axis ? t.col_parts : 1;
      piece *= cdiv(t.dims[static_cast<size_t>(a)], parts);
    }
    t.bytes_per_pe = piece * 4;
  }
}

void fill_buffers_routes_tasks(MeshOp& op, const Footprint& f) {
  op.buffers.clear();
  op.routes.clear();
  op.tasks.clear();
  auto buf = [&](const char* prefix, const char* role, int64_t elems) {
    if (elems > 0) op.buffers.push_back({std::string(prefix) + op.node, role, elems, elems * 4});
  };
  buf("w_", "weight", f.weight);
  buf("x_", "input", f.input);
  buf("y_", "output", f.output);
  buf("s_", "scratch", f.scratch);
  MeshRect area{0, 0, op.split.width(), op.split.height()};
  if (is_anchor_kind(op.kind)) {
    // The csl-examples GEMV: x flows SOUTH on colour 0, partials flow EAST on colours 1/2
    // alternating per column (a PE receives on one and sends on the other).
    op.routes.push_back({0, "col_broadcast", area, {"NORTH"}, {"RAMP", "SOUTH"}, find_role(op, "input")->name});
    if (op.split.k_parts > 1) {
      op.routes.push_back({1, "row_reduce", area, {"WEST"}, {"EAST"}, find_role(op, "output")->name});
      op.routes.push_back({2, "row_reduce", area, {"WEST"}, {"EAST"}, find_role(op, "output")->name});
    }
    op.tasks.push_back({"recv_x_" + op.node, "data", 0, "fmacs y[:] += w[:, j] * x_j per arriving x wavelet"});
    if (op.split.k_parts > 1) op.tasks.push_back({"recv_partial_" + op.node, "data", 1, "fadds y += partial from WEST"});
    op.tasks.push_back({"epilogue_" + op.node, "local", -1, "bias, residual and activation on the last column"});
  } else if (is_row_reduce(op) && op.split.k_parts > 1) {
    // Row statistics (sum / max, then squared deviations / sum of exp) flow EAST and the
    // totals come back WEST.
    op.routes.push_back({1, "row_reduce", area, {"WEST"}, {"EAST"}, find_role(op, "output")->name});
    op.routes.push_back({2, "row_broadcast", area, {"EAST"}, {"RAMP", "WEST"}, find_role(op, "output")->name});
    op.tasks.push_back({"stats_" + op.node, "local", -1, "partial row statistics of the PE's block"});
    op.tasks.push_back({"recv_stats_" + op.node, "data", 1, "fadds/fmax partial statistics from WEST"});
    op.tasks.push_back({"normalise_" + op.node, "data", 2, "apply the row totals to the PE's block"});
  } else {
    op.tasks.push_back({"compute_" + op.node, "local", -1, std::string(mesh_op_kind_name(op.kind)) + " on the PE's elements"});
  }
}

}  // namespace

OpCycles op_cycles(const WseSpec& spec, const MeshOp& op) {
  const GemmView& g = op.gemm;
  const MeshSplit& s = op.split;
  const double mt = static_cast<double>(cdiv(g.m, s.m_parts));
  const double kt = static_cast<double>(cdiv(g.k, s.k_parts));
  const double nt = static_cast<double>(cdiv(g.n, s.n_parts));
  OpCycles c;
  switch (op.kind) {
    case MeshOpKind::kGemm:
    case MeshOpKind::kConv:
      c = gemm_op_cycles(spec, g, s);
      // Epilogue on the last column: bias/residual adds and the activation per output.
      c.compute += vector_cycles(spec, mt * nt, 1, op.strings.count("activation") ? mt * nt * 0.2 : 0);
      c.total = std::max(c.compute, c.broadcast) + c.reduce;
      return c;
    case MeshOpKind::kAttention: {
      const double hp = static_cast<double>(cdiv(g.groups, s.n_parts));
      const double dk = static_cast<double>(g.n / std::max<int64_t>(1, g.groups));
      c.compute = fmacs_cycles(spec, mt * kt * hp, dk) * 2 + vector_cycles(spec, mt * kt * hp * 2, mt * hp, mt * kt * hp);
      c.broadcast = broadcast_cycles(spec, mt * dk * hp, s.k_parts);
      c.reduce = chain_reduce_cycles(spec, mt * (dk + 2) * hp, s.k_parts - 1);
      c.total = std::max(c.compute, c.broadcast) + c.reduce;
      return c;
    }
    case MeshOpKind::kRecurrent: {
      // Time steps are sequential: per step one GEMV of [x_t, h] (kt per PE) into nt gate
      // rows, its row reduction, the gates on the last column and h broadcast back.
      const double steps = static_cast<double>(op.ints.count("seq_length") ? op.ints.at("seq_length")[0] : 1);
      const double batch = g.m / std::max(1.0, steps);
      double step = fmacs_cycles(spec, kt * batch, nt) + chain_reduce_cycles(spec, nt * batch, s.k_parts - 1) +
                    vector_cycles(spec, nt * batch * 2, 4, nt * batch) + broadcast_cycles(spec, nt * batch / 3, s.k_parts + s.n_parts);
      c.compute = step * steps;
      c.total = c.compute;
      return c;
    }
    case MeshOpKind::kMovement: {
      // Data moves over the fabric: a PE's elements leave through its links, one wavelet per
      // cycle, across at most the grid's extent.
      c.broadcast = transfer_cycles(spec, mt, 1, std::max(s.width(), s.height()));
      c.total = c.broadcast;
      return c;
    }
    default: {
      if (is_row_reduce(op) && op.kind == MeshOpKind::kPool) {
        // Global pooling: a sum (max) per PE block, one chained reduction EAST.
        c.compute = vector_cycles(spec, mt * kt, 1);
        c.reduce = chain_reduce_cycles(spec, mt, s.k_parts - 1);
        c.total = c.compute + c.reduce;
        return c;
      }
      if (is_row_reduce(op)) {
        // LayerNorm: sum, then squared deviations, each reduced EAST and broadcast back, then
        // the scale; softmax: max, then exp and sum, reduced the same way, then the division.
        const bool ln = op.op_type == "LayerNormalization";
        c.compute = vector_cycles(spec, mt * kt * (ln ? 5 : 4), 3, ln ? mt : mt * kt + mt);
        c.reduce = 2 * (chain_reduce_cycles(spec, mt, s.k_parts - 1) + broadcast_cycles(spec, mt, s.k_parts));
        c.total = c.compute + c.reduce;
        return c;
      }
      // Elementwise / pool / norm / softmax / reduce: per element about k operations (window,
      // normalised extent), transcendental ones where the op needs them, then a reduction
      // across the PEs sharing a row when the reduced axis is spread over them.
      const double work = mt * std::max(1.0, op.kind == MeshOpKind::kElementwise ? 1.0 : static_cast<double>(g.k));
      double trans = 0;
      const std::string& t = op.op_type;
      if (t == "Sigmoid" || t == "Tanh" || t == "Erf" || t == "Exp" || t == "Gelu" || t == "Div" || t == "Sqrt" ||
          t == "HardSwish" || t == "Elu" || t == "Pow" || t == "Reciprocal" || op.kind == MeshOpKind::kSoftmax) {
        trans = op.kind == MeshOpKind::kSoftmax ? work : mt;
      }
      if (op.kind == MeshOpKind::kNorm) trans = mt / std::max(1.0, static_cast<double>(g.k));  // one rsqrt per row
      c.compute = vector_cycles(spec, work * (op.kind == MeshOpKind::kNorm ? 4 : 1), 1, trans);
      if (op.kind == MeshOpKind::kSoftmax || op.kind == MeshOpKind::kNorm || op.kind == MeshOpKind::kReduce ||
          op.op_type.rfind("Global", 0) == 0) {
        c.reduce = chain_reduce_cycles(spec, 2, s.width() - 1);
      }
      c.total = c.compute + c.reduce;
      return c;
    }
  }
}

bool tile_op(const WseSpec& spec, MeshOp& op, int w, int h, int64_t budget_bytes) {
  const GemmView& g = op.gemm;
  bool found = false;
  MeshSplit best;
  double best_cycles = 0;
  auto consider = [&](MeshSplit s) {
    Footprint f = footprint(op, s);
    if ((f.weight + f.activations()) * 4 > budget_bytes) return;
    MeshOp probe = op;
    probe.split = s;
    double cyc = op_cycles(spec, probe).total;
    if (!found || cyc < best_cycles - 1e-9 || (std::abs(cyc - best_cycles) <= 1e-9 && s.pes() < best.pes())) {
      found = true;
      best = s;
      best_cycles = cyc;
    }
  };
  if (is_anchor_kind(op.kind)) {
    int64_t kmax = g.k, nmax = g.n;
    if (op.kind == MeshOpKind::kConv) kmax = find_role(op, "weight")->dims[1];  // channel boundaries
    if (op.kind == MeshOpKind::kAttention) nmax = g.groups;                      // heads
    for (int k : candidates(kmax, w)) {
      for (int n : candidates(nmax, h)) {
        MeshSplit s;
        s.k_parts = k;
        s.n_parts = n;
        if (op.kind != MeshOpKind::kRecurrent) {  // time steps depend on each other
          int gx = w / k, gy = h / n;
          int64_t m = std::min<int64_t>(g.m, static_cast<int64_t>(gx) * gy);
          s.m_grid_x = static_cast<int>(std::min<int64_t>(gx, m));
          s.m_grid_y = static_cast<int>(cdiv(m, s.m_grid_x));
          s.m_parts = s.m_grid_x * s.m_grid_y;
          if (s.m_parts > g.m) {  // the last grid row only partly used
            s.m_grid_y = static_cast<int>(g.m / s.m_grid_x);
            s.m_parts = s.m_grid_x * s.m_grid_y;
          }
        }
        consider(s);
      }
    }
  } else if (is_row_reduce(op)) {
    for (int k : candidates(g.k, w)) {
      MeshSplit s;
      s.k_parts = k;
      int gx = w / k;
      int64_t m = std::min<int64_t>(std::max<int64_t>(1, g.m), static_cast<int64_t>(gx) * h);
      s.m_grid_x = static_cast<int>(std::min<int64_t>(gx, m));
      s.m_grid_y = static_cast<int>(m / s.m_grid_x);
      s.m_parts = s.m_grid_x * s.m_grid_y;
      consider(s);
    }
  } else {
    MeshSplit s;
    int64_t m = std::min<int64_t>(std::max<int64_t>(1, g.m), static_cast<int64_t>(w) * h);
    s.m_grid_x = static_cast<int>(std::min<int64_t>(w, m));
    s.m_grid_y = static_cast<int>(m / s.m_grid_x);
    s.m_parts = s.m_grid_x * s.m_grid_y;
    consider(s);
  }
  if (!found) return false;
  op.split = best;
  Footprint f = footprint(op, best);
  op.sram_bytes_max = (f.weight + f.activations()) * 4;
  op.cycles = op_cycles(spec, op);
  fill_tilings(op, w, h);
  fill_buffers_routes_tasks(op, f);
  return true;
}

namespace {

struct Group {
  std::vector<MeshOp> ops;
  double work = 0;  // MACs, for sharing PEs
  int64_t min_side_w = 0, min_side_h = 0;
};

// Tiles every op of `part` on w x h; the partition's per-PE bytes are its ops' weights plus
// the largest op's activations (ops run one after another on the same PEs).
bool tile_partition(const WseSpec& spec, MeshPartition& part, int w, int h) {
  const int64_t budget = spec.data_bytes_per_pe();
  int64_t other_weights = 0;
  for (int pass = 0; pass < 2; ++pass) {
    int64_t weights = 0, acts = 0;
    double mean_bytes_w = 0, mean_bytes_a = 0;
    for (MeshOp& op : part.ops) {
      int64_t op_budget = budget - (other_weights - 0);
      if (!tile_op(spec, op, w, h, std::max<int64_t>(0, op_budget))) return false;
      Footprint f = footprint(op, op.split);
      weights += f.weight * 4;
      acts = std::max(acts, f.activations() * 4);
      const double pes = static_cast<double>(w) * h;
      mean_bytes_w += static_cast<double>(op.weight_bytes) * op.split.m_parts / pes;
      int64_t moved = 0;
      for (const auto& t : op.tensors) if (t.role != "weight" && t.role != "bias") moved += num_elements(t.dims) * 4;
      mean_bytes_a = std::max(mean_bytes_a, static_cast<double>(moved) / pes);
    }
    if (weights + acts <= budget) {
      part.rect.w = w;
      part.rect.h = h;
      part.sram_bytes_max = weights + acts + spec.code_reserve_bytes;
      part.sram_bytes_mean = std::min<int64_t>(part.sram_bytes_max,
                                               static_cast<int64_t>(mean_bytes_w + mean_bytes_a) + spec.code_reserve_bytes);
      part.est_cycles = 0;
      for (const MeshOp& op : part.ops) part.est_cycles += op.cycles.total;
      return true;
    }
    // Second try: each op tiled knowing the other ops' weights share its PEs.
    other_weights = weights;
  }
  return false;
}

// Rectangle shape for about `pes` PEs within w_max x h_max: the most square one whose height
// is h_max / j for some j, so that shelves of such rectangles stack without a gap.
std::pair<int, int> shape_for(int64_t pes, int w_max, int h_max) {
  std::pair<int, int> best{w_max, h_max};
  double best_ratio = 1e300;
  for (int j = 1; j <= h_max; ++j) {
    int h = h_max / j;
    if (j > 1 && h == h_max / (j - 1)) continue;
    int64_t w = cdiv(pes, h);
    if (w > w_max) break;  // shorter rectangles only get wider
    double ratio = std::max(static_cast<double>(w) / h, static_cast<double>(h) / static_cast<double>(w));
    if (ratio < best_ratio) {
      best_ratio = ratio;
      best = {static_cast<int>(w), h};
    }
    if (static_cast<double>(w) > h) break;  // past square: only worse from here
  }
  return best;
}

// Smallest square-ish rectangle (w_max x h_max at most) on which the partition fits.
bool smallest_rect(const WseSpec& spec, MeshPartition& part, int w_max, int h_max) {
  int64_t lo = 1, hi = static_cast<int64_t>(w_max) * h_max;
  {
    MeshPartition probe = part;
    if (!tile_partition(spec, probe, w_max, h_max)) return false;
  }
  // Binary search on the PE count (fit is monotone enough in the area of a square-ish shape).
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    auto [w, h] = shape_for(mid, w_max, h_max);
    MeshPartition probe = part;
    if (tile_partition(spec, probe, w, h)) hi = mid; else lo = mid + 1;
  }
  auto [w, h] = shape_for(lo, w_max, h_max);
  if (!tile_partition(spec, part, w, h)) return tile_partition(spec, part, w_max, h_max);
  return true;
}

double op_work(const MeshOp& op) {
  const GemmView& g = op.gemm;
  if (is_anchor_kind(op.kind)) return static_cast<double>(g.m) * g.k * g.n * (op.kind == MeshOpKind::kAttention ? 2.0 / std::max<int64_t>(1, g.groups) : 1.0);
  return static_cast<double>(g.m) * std::max<int64_t>(1, g.k);
}

struct Packer {
  int w_max, h_max, systems;
  int x = 0, y = 0, shelf_h = 0, system = 0;
  bool place(MeshRect& r) {
    if (r.w > w_max || r.h > h_max) return false;
    if (x + r.w > w_max) {
      x = 0;
      y += shelf_h;
      shelf_h = 0;
    }
    if (y + r.h > h_max) {
      if (++system >= systems) return false;
      x = y = shelf_h = 0;
    }
    r.x = x;
    r.y = y;
    r.system = system;
    x += r.w;
    shelf_h = std::max(shelf_h, r.h);
    return true;
  }
};

std::string mb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MB", bytes / 1e6);
  return b;
}

// Colours for the transfers: each follows an L-shaped path (along the source's row to the
// destination's column, then along that column); two transfers sharing a router need
// different colours. Greedy, lowest free id first, from the ids the partitions' own
// collectives (0..2) leave.
Status assign_colors(const WseSpec& spec, MeshPlan& plan) {
  const int first = 3, last = spec.program_colors() - 1;
  std::unordered_map<int64_t, uint32_t> used;  // router cell -> colour bitmask
  auto key = [&](int sys, int x, int y) { return (static_cast<int64_t>(sys) << 42) | (static_cast<int64_t>(x) << 21) | y; };
  int most = 0;
  for (MeshTransfer& t : plan.transfers) {
    if (t.from < 0 || t.to < 0) continue;  // host transfers ride the memcpy colours
    const MeshRect& a = plan.partitions[static_cast<size_t>(t.from)].rect;
    const MeshRect& b = plan.partitions[static_cast<size_t>(t.to)].rect;
    if (a.system != b.system) continue;  // through the hosts' network, not the fabric
    std::vector<int64_t> cells;
    int x0 = a.x + a.w - 1, y0 = a.y + a.h / 2, x1 = b.x, y1 = b.y + b.h / 2;
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) cells.push_back(key(a.system, x, y0));
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y) cells.push_back(key(a.system, x1, y));
    uint32_t busy = 0;
    for (int64_t c : cells) if (auto it = used.find(c); it != used.end()) busy |= it->second;
    int color = -1;
    for (int c = first; c <= last; ++c) if (!(busy & (1u << c))) { color = c; break; }
    if (color < 0) {
      return make_status(StatusCode::kResourceExhausted, "wafer ", spec.name, ": routing '", t.tensor, "' from partition ",
                         t.from, " to ", t.to, " needs more than the ", last - first + 1,
                         " colours left for transfers (", spec.routable_colors, " routable, ", spec.memcpy_colors,
                         " taken by memcpy, 3 by each partition's collectives)");
    }
    t.color = color;
    most = std::max(most, color);
    for (int64_t c : cells) used[c] |= 1u << color;
  }
  return Status::OK();
}

Status route_and_estimate(const Graph& graph, const WseSpec& spec, const ShapeMap& shapes, MeshPlan& plan) {
  std::map<std::string, int> producer;
  for (const auto& p : plan.partitions) {
    for (const auto& op : p.ops) for (const auto& t : op.tensors) if (t.role == "output") producer[t.name] = p.id;
  }
  std::set<std::string> graph_inputs, graph_outputs;
  for (const auto& v : graph.inputs) graph_inputs.insert(v.name);
  for (const auto& v : graph.outputs) graph_outputs.insert(v.name);
  auto words_of = [&](const std::string& name) -> int64_t {
    auto it = shapes.find(name);
    return it == shapes.end() ? 0 : num_elements(it->second);
  };
  const double host_bw_bytes = spec.io_channels * spec.io_channel_bits_per_s / 8;
  for (auto& p : plan.partitions) {
    std::set<std::string> seen;
    for (const auto& op : p.ops) {
      for (const auto& t : op.tensors) {
        if (t.role == "output" || t.role == "weight" || graph.initializers.count(t.name) || seen.count(t.name)) continue;
        auto prod = producer.find(t.name);
        if (prod != producer.end() && prod->second == p.id) continue;
        seen.insert(t.name);
        p.inputs.push_back(t.name);
        MeshTransfer tr;
        tr.tensor = t.name;
        tr.to = p.id;
        tr.bytes = words_of(t.name) * 4;
        if (prod == producer.end()) {  // from the host, entering through the memcpy columns
          tr.from = -1;
          tr.hops = p.rect.x + spec.memcpy_west_columns;
          plan.host_in_bytes += graph_inputs.count(t.name) ? tr.bytes : 0;
          tr.cycles = transfer_cycles(spec, static_cast<double>(tr.bytes / 4), p.rect.h, tr.hops);
        } else {
          tr.from = prod->second;
          const MeshRect& a = plan.partitions[static_cast<size_t>(tr.from)].rect;
          tr.hops = std::abs(p.rect.x - (a.x + a.w - 1)) + std::abs((p.rect.y + p.rect.h / 2) - (a.y + a.h / 2));
          if (a.system != p.rect.system) {  // between wafers through the hosts (ours: two memcpys)
            tr.cycles = 2 * spec.host_io_us(static_cast<double>(tr.bytes)) * spec.clock_hz / 1e6;
          } else {
            tr.cycles = transfer_cycles(spec, static_cast<double>(tr.bytes / 4), std::min(a.h, p.rect.h), tr.hops);
          }
        }
        plan.transfers.push_back(tr);
      }
    }
  }
  for (auto& p : plan.partitions) {
    std::set<std::string> seen;
    for (const auto& op : p.ops) {
      for (const auto& t : op.tensors) {
        if (t.role != "output" || seen.count(t.name)) continue;
        bool leaves = graph_outputs.count(t.name) > 0;
        for (const auto& tr : plan.transfers) leaves |= tr.tensor == t.name && tr.to != p.id;
        if (!leaves) continue;
        seen.insert(t.name);
        p.outputs.push_back(t.name);
        if (graph_outputs.count(t.name)) {
          MeshTransfer tr;
          tr.tensor = t.name;
          tr.from = p.id;
          tr.to = -1;
          tr.bytes = words_of(t.name) * 4;
          tr.hops = plan.fabric_width - (p.rect.x + p.rect.w) + spec.memcpy_east_columns;
          tr.cycles = transfer_cycles(spec, static_cast<double>(tr.bytes / 4), p.rect.h, tr.hops);
          plan.host_out_bytes += tr.bytes;
          plan.transfers.push_back(tr);
        }
      }
    }
  }
  RETURN_IF_ERROR(assign_colors(spec, plan));
  for (int c = 0; c < spec.program_colors(); ++c) plan.free_colors.push_back(c);
  // Per partition: its collectives' colours and its transfers'.
  for (auto& p : plan.partitions) {
    std::set<int> colors;
    for (const auto& op : p.ops) for (const auto& r : op.routes) colors.insert(r.color);
    for (const auto& t : plan.transfers) if ((t.from == p.id || t.to == p.id) && t.color >= 0) colors.insert(t.color);
    p.colors.assign(colors.begin(), colors.end());
  }
  // Totals. Latency: the longest path through the partitions (a stage starts when its last
  // input arrived); throughput: the slowest stage with its inbound transfers, per replica,
  // bounded by the host channels.
  std::vector<double> finish(plan.partitions.size(), 0), stage(plan.partitions.size(), 0);
  double last = 0;
  for (auto& p : plan.partitions) {
    double start = 0;
    stage[static_cast<size_t>(p.id)] = p.est_cycles;
    for (const auto& t : plan.transfers) {
      if (t.to != p.id) continue;
      double ready = (t.from >= 0 ? finish[static_cast<size_t>(t.from)] : 0) + t.cycles;
      start = std::max(start, ready);
      stage[static_cast<size_t>(p.id)] += t.cycles;
    }
    finish[static_cast<size_t>(p.id)] = start + p.est_cycles;
  }
  for (const auto& t : plan.transfers) {
    if (t.to == -1) last = std::max(last, finish[static_cast<size_t>(t.from)] + t.cycles);
  }
  for (double f : finish) last = std::max(last, f);
  plan.est_cycles = last;
  int64_t pes = 0;
  double sram_sum = 0;
  for (const auto& p : plan.partitions) {
    pes += p.rect.pes();
    plan.sram_bytes_max = std::max(plan.sram_bytes_max, p.sram_bytes_max);
    sram_sum += static_cast<double>(p.sram_bytes_mean) * static_cast<double>(p.rect.pes());
  }
  plan.sram_bytes_mean = pes ? static_cast<int64_t>(sram_sum / static_cast<double>(pes)) : 0;
  plan.pes_used = pes * plan.replicas;
  plan.utilisation = static_cast<double>(plan.pes_used) / static_cast<double>(spec.usable_pes() * plan.systems);
  plan.host_io_us = spec.host_io_us(static_cast<double>(plan.host_in_bytes)) + spec.host_io_us(static_cast<double>(plan.host_out_bytes));
  plan.est_latency_us = spec.cycles_to_us(plan.est_cycles) + plan.host_io_us;
  double slowest = *std::max_element(stage.begin(), stage.end());
  double fabric_rate = plan.replicas * spec.clock_hz / std::max(1.0, slowest);
  double io_bytes = static_cast<double>(plan.host_in_bytes + plan.host_out_bytes);
  double io_rate = io_bytes > 0 ? host_bw_bytes / io_bytes : fabric_rate;
  plan.est_throughput_per_s = std::min(fabric_rate, io_rate);
  return Status::OK();
}

}  // namespace

Expected<MeshPlan> plan_mesh(const Graph& graph, const WseSpec& spec) {
  ShapeMap shapes = known_shapes(graph);
  // 1. Partitions: an anchor op and the light ops after it.
  std::vector<MeshPartition> parts;
  for (const Node& node : graph.nodes) {
    ASSIGN_OR_RETURN(MeshOp op, describe_op(graph, node, shapes));
    if (parts.empty() || is_anchor_kind(op.kind)) {
      bool start_new = parts.empty() || std::any_of(parts.back().ops.begin(), parts.back().ops.end(),
                                                     [](const MeshOp& o) { return is_anchor_kind(o.kind); });
      if (start_new) parts.emplace_back();
    }
    parts.back().ops.push_back(std::move(op));
  }
  if (parts.empty()) return invalid_argument("the wafer was given an empty partition");
  const int W = spec.usable_width, H = spec.usable_height;
  const int64_t U1 = spec.usable_pes();
  // 2. Smallest rectangle per partition: the model's floor.
  int64_t total_min = 0;
  double total_work = 0;
  std::vector<int64_t> min_pes(parts.size());
  std::vector<double> work(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    MeshPartition& p = parts[i];
    p.id = static_cast<int>(i);
    if (!smallest_rect(spec, p, W, H)) {
      int64_t weights = 0;
      for (const MeshOp& op : p.ops) weights += op.weight_bytes;
      return make_status(StatusCode::kResourceExhausted, "wafer ", spec.name, ": partition ", i, " (starting at node '",
                         p.ops[0].node, "', ", p.ops[0].op_type, ") does not fit on the ", W, " x ", H,
                         " fabric: ", mb(static_cast<double>(weights)), " of weights at ",
                         spec.data_bytes_per_pe(), " bytes per PE (", spec.sram_bytes_per_pe, " minus ",
                         spec.code_reserve_bytes, " reserved for code) need more than ", U1, " PEs");
    }
    min_pes[i] = p.rect.pes();
    total_min += min_pes[i];
    for (const MeshOp& op : p.ops) work[i] += op_work(op);
    total_work += work[i];
  }
  const int64_t capacity = U1 * spec.systems;
  if (total_min > capacity) {
    int64_t weights = 0;
    for (const auto& p : parts) for (const auto& op : p.ops) weights += op.weight_bytes;
    return make_status(StatusCode::kResourceExhausted, "model does not fit on ", spec.systems, " ", spec.name,
                       " system(s) of ", W, " x ", H, " PEs: its ", parts.size(), " partitions need at least ", total_min,
                       " PEs (", mb(static_cast<double>(weights)), " of weights plus activations at ",
                       spec.data_bytes_per_pe(), " bytes per PE), the fabric has ", capacity,
                       " (provider option 'systems' allows more wafers)");
  }
  // 3. Strategy by size.
  MeshPlan plan;
  plan.device = spec.name;
  plan.fabric_width = W;
  plan.fabric_height = H;
  double ratio = static_cast<double>(total_min) / static_cast<double>(U1);
  int replicas = 1;
  if (ratio > 1) plan.strategy = "multi_system";
  else if (ratio > 0.5) plan.strategy = "pipelined";
  else if (ratio > 1.0 / 8) plan.strategy = "hybrid";
  else {
    int widest = 1;
    for (const auto& p : parts) widest = std::max(widest, p.rect.w);
    replicas = static_cast<int>(std::min<int64_t>({16, W / widest, U1 / std::max<int64_t>(1, total_min * 4)}));
    replicas = std::max(1, replicas);
    plan.strategy = "replicated";
  }
  // 4. Size and pack: grow partitions by their share of the work (hybrid/replicated), shrink
  // the shares until the rectangles pack; the smallest rectangles are the last resort, and
  // fewer replicas after that.
  std::vector<MeshPartition> placed;
  bool packed = false;
  for (; !packed && replicas >= 1; replicas = replicas > 1 ? replicas / 2 : 0) {
    const int band_w = W / replicas;
    const bool grow = plan.strategy == "hybrid" || plan.strategy == "replicated";
    double fill = grow ? 0.7 : 0.0;
    for (int attempt = 0; attempt < 24 && !packed; ++attempt) {
      Packer packer{band_w, H, replicas > 1 ? 1 : spec.systems};
      placed = parts;
      packed = true;
      const double budget = fill * static_cast<double>(band_w) * H;
      for (size_t i = 0; i < placed.size() && packed; ++i) {
        int64_t target = std::max<int64_t>(min_pes[i], static_cast<int64_t>(budget * work[i] / std::max(1.0, total_work)));
        if (target > min_pes[i]) {
          auto [w, h] = shape_for(target, band_w, H);
          MeshPartition grown = placed[i];
          if (tile_partition(spec, grown, w, h) && grown.est_cycles <= parts[i].est_cycles) placed[i] = grown;
        }
        packed = packer.place(placed[i].rect);
      }
      if (fill == 0) break;
      fill = attempt < 20 ? fill * 0.8 : 0;
    }
    if (packed) break;
  }
  if (!packed) {
    return make_status(StatusCode::kResourceExhausted, "wafer ", spec.name, ": ", parts.size(),
                       " partitions needing ", total_min, " PEs in all could not be packed into ", spec.systems,
                       " fabric(s) of ", W, " x ", H, " without overlap");
  }
  if (replicas <= 1 && plan.strategy == "replicated") plan.strategy = "hybrid";
  replicas = std::max(1, replicas);
  plan.partitions = std::move(placed);
  plan.replicas = replicas;
  for (const auto& p : plan.partitions) plan.systems = std::max(plan.systems, p.rect.system + 1);
  if (plan.systems > 1) plan.strategy = "multi_system";
  RETURN_IF_ERROR(route_and_estimate(graph, spec, shapes, plan));
  return plan;
}

}  // namespace pyflame_rt
