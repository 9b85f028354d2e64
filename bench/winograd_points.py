#!/usr/bin/python3
"""Offline model of Winograd F(4x4,3x3)'s float32 error for candidate interpolation points
(devices/cpu/winograd_conv.cpp; docs/performance.md, "Winograd accuracy"). Not on the runtime's
path: numpy here only derives and ranks the transforms.

For each point set (five finite points and infinity) it derives B^T, G, A^T exactly (fractions;
Toom-Cook: A^T and G Vandermonde, B^T solved so that A^T[(G g) . (B^T d)] is the 3-tap
correlation), then runs a random ResNet-like layer (post-ReLU inputs, He-scaled weights, cin
64..512) through it with every step rounded to float32 as the kernel does (the weight transform
exact in double, rounded once; each transform row an FMA chain in float32; the products a
sequential float32 FMA chain over cin) and reports the relative L2 and max error of the outputs
against a float64 direct convolution, beside float32 direct convolution and F(2x2,3x3)
(oneDNN's Winograd).

    /usr/bin/python3 bench/winograd_points.py [--search] [--cin 64,256] [--tiles 400] [--print SET]
        [--kernel]

--search ranks every 5-point subset of a pool of small rationals (slow: hours); without it,
the named candidates only (generic FMA chains per transform row). --print 0,1,-1,1/2,-2 prints
that set's matrices. --kernel runs the kernel's own add/FMA sequences for the old and the new
points, with the products summed over all cin or in blocks.
"""

import argparse
import itertools
import sys
from fractions import Fraction as Fr

import numpy as np

INF = "inf"


def toom_cook(points, m=4, r=3):
    """Exact (A^T, G, B^T) of F(m, r) on `points` (finite ones; infinity is added last)."""
    n = m + r - 1
    pts = [Fr(p) for p in points]
    assert len(pts) == n - 1 and len(set(pts)) == n - 1
    at = [[pts[j] ** i for j in range(n - 1)] + [Fr(int(i == m - 1))] for i in range(m)]
    g = []
    for j in range(n - 1):
        norm = Fr(1)
        for l in range(n - 1):
            if l != j:
                norm *= pts[j] - pts[l]
        g.append([pts[j] ** k / norm for k in range(r)])
    g.append([Fr(int(k == r - 1)) for k in range(r)])
    # B^T: for each input index l, sum_j AT[i][j] G[j][k] BT[j][l] = [l == i + k].
    bt = [[Fr(0)] * n for _ in range(n)]
    for l in range(n):
        rows = [[at[i][j] * g[j][k] for j in range(n)] for i in range(m) for k in range(r)]
        rhs = [Fr(int(l == i + k)) for i in range(m) for k in range(r)]
        sol = solve_exact(rows, rhs, n)
        for j in range(n):
            bt[j][l] = sol[j]
    return at, g, bt


def solve_exact(rows, rhs, n):
    """The exact solution of an overdetermined consistent system (Gaussian elimination)."""
    a = [row[:] + [b] for row, b in zip(rows, rhs)]
    piv_cols = []
    r = 0
    for c in range(n):
        p = next((i for i in range(r, len(a)) if a[i][c] != 0), None)
        if p is None:
            continue
        a[r], a[p] = a[p], a[r]
        a[r] = [x / a[r][c] for x in a[r]]
        for i in range(len(a)):
            if i != r and a[i][c] != 0:
                f = a[i][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[r])]
        piv_cols.append(c)
        r += 1
    assert r == n, "singular"
    assert all(row[n] == 0 for row in a[r:]), "inconsistent"
    sol = [Fr(0)] * n
    for i, c in enumerate(piv_cols):
        sol[c] = a[i][n]
    return sol


def balance(at, g, bt):
    """Scale each position j by powers of two (exact in float): B^T row j * t_j, G row j * s_j,
    A^T column j / (s_j t_j), so that B^T's and A^T's largest entries per row/column are
    near 1 (the scaling does not change the rounding, only the magnitudes the steps see)."""
    n = len(bt)
    for j in range(n):
        bmax = max(abs(x) for x in bt[j])
        t = Fr(2) ** (-round(np.log2(float(bmax))))
        amax = max(abs(at[i][j]) for i in range(len(at)))
        s_t = amax  # A^T column / (s t) near 1
        s = Fr(2) ** round(np.log2(float(s_t / t)))
        bt[j] = [x * t for x in bt[j]]
        g[j] = [x * s for x in g[j]]
        for i in range(len(at)):
            at[i][j] = at[i][j] / (s * t)
    return at, g, bt


def f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def fma32(a, b, c):
    """float32 fma: a*b exact in double (two float32s), one rounding to float32 (the double
    rounding of the sum is a 2^-29 relative effect, below what is measured here)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def apply_rows(mat, x, axis):
    """mat (rows x n, float) applied along `axis` of float32 x: each output an FMA chain in
    float32 over the nonzero coefficients, in column order."""
    x = np.moveaxis(x, axis, 0)
    out = []
    for row in mat:
        acc = None
        for c, coef in enumerate(row):
            if coef == 0:
                continue
            term = x[c]
            cf = np.float32(coef)
            if acc is None:
                acc = (term.astype(np.float64) * float(cf)).astype(np.float32)
            else:
                acc = fma32(np.full_like(term, cf), term, acc)
        out.append(acc if acc is not None else np.zeros_like(x[0]))
    return np.moveaxis(np.stack(out), 0, axis)


class Layer:
    """Random 3x3 layer and tiles: x [T, cin, t, t] tiles of a post-ReLU input, w [cout, cin, 3, 3]."""

    def __init__(self, cin, cout, tiles, tile, seed, relu_input=True):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((tiles, cin, tile, tile))
        if relu_input:
            x = np.maximum(x + 0.1, 0)
        self.x = x.astype(np.float32)
        self.w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32)
        m = tile - 2
        ref = np.zeros((tiles, cout, m, m))
        xd, wd = self.x.astype(np.float64), self.w.astype(np.float64)
        for ky in range(3):
            for kx in range(3):
                ref += np.einsum("tcyx,oc->toyx", xd[:, :, ky:ky + m, kx:kx + m], wd[:, :, ky, kx])
        self.ref = ref


def winograd_error(layer, at, g, bt, input_fn=None, output_fn=None):
    """Relative L2 and max error of float32 Winograd on `layer` against float64 direct."""
    atf = np.array([[float(v) for v in row] for row in at])
    gf = np.array([[float(v) for v in row] for row in g])
    btf = np.array([[float(v) for v in row] for row in bt])
    # U = G g G^T exact in double, rounded once to float32.
    u = np.einsum("ik,ockl,jl->ocij", gf, layer.w.astype(np.float64), gf).astype(np.float32)
    # V = B^T d B, columns then rows, in float32.
    if input_fn is None:
        v = apply_rows(btf, apply_rows(btf, layer.x, 2), 3)
    else:
        v = input_fn(layer.x)
    # M[t, o, p] = sum_c U[o, c, p] V[t, c, p], a float32 FMA chain over c.
    t, cin = v.shape[0], v.shape[1]
    n = v.shape[2]
    mm = np.zeros((t, u.shape[0], n, n), dtype=np.float32)
    for c in range(cin):
        mm = fma32(v[:, None, c], u[None, :, c], mm)
    if output_fn is None:
        y = apply_rows(atf, apply_rows(atf, mm, 2), 3)
    else:
        y = output_fn(mm)
    d = y.astype(np.float64) - layer.ref
    return np.linalg.norm(d) / np.linalg.norm(layer.ref), np.abs(d).max() / np.abs(layer.ref).max()


def direct_error(layer):
    """float32 direct convolution: per output an FMA chain over (cin, ky, kx)."""
    m = layer.x.shape[2] - 2
    acc = np.zeros(layer.ref.shape, dtype=np.float32)
    for c in range(layer.x.shape[1]):
        for ky in range(3):
            for kx in range(3):
                xs = layer.x[:, None, c, ky:ky + m, kx:kx + m]
                acc = fma32(xs, layer.w[None, :, c, ky, kx, None, None], acc)
    d = acc.astype(np.float64) - layer.ref
    return np.linalg.norm(d) / np.linalg.norm(layer.ref), np.abs(d).max() / np.abs(layer.ref).max()


# The kernel's own instruction sequences (devices/cpu/winograd_conv.cpp), each add, FMA and
# multiply rounded to float32: the old points (0, +-1, +-2) and the new (0, 1, -1, 1/2, -2).
def _add(a, b):
    return (a.astype(np.float64) + b.astype(np.float64)).astype(np.float32)


def _sub(a, b):
    return (a.astype(np.float64) - b.astype(np.float64)).astype(np.float32)


def _fma(k, a, c):  # k * a + c, one rounding
    return (k * a.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def _mul(k, a):
    return (k * a.astype(np.float64)).astype(np.float32)


def input_rows_old(d):
    r0 = _fma(-5.0, d[2], _fma(4.0, d[0], d[4]))
    r5 = _fma(-5.0, d[3], _fma(4.0, d[1], d[5]))
    a = _fma(-4.0, d[2], d[4])
    b = _fma(-4.0, d[1], d[3])
    c = _sub(d[4], d[2])
    e = _mul(2.0, _sub(d[3], d[1]))
    return [r0, _add(a, b), _sub(a, b), _add(c, e), _sub(c, e), r5]


def output_rows_old(m):
    s12, d12, s34, d34 = _add(m[1], m[2]), _sub(m[1], m[2]), _add(m[3], m[4]), _sub(m[3], m[4])
    return [_add(_add(m[0], s12), s34), _fma(2.0, d34, d12), _fma(4.0, s34, s12), _add(_fma(8.0, d34, d12), m[5])]


def input_rows_new(d):
    p, q = _sub(d[3], d[1]), _sub(d[4], d[2])
    return [_fma(1.5, p, _fma(-2.0, d[2], _add(d[0], d[4]))),
            _fma(1.5, _add(d[2], d[3]), _add(p, q)),
            _fma(1.5, _sub(d[3], d[2]), _sub(q, p)),
            _fma(2.0, p, q),
            _fma(2.0, q, -p),
            _fma(1.5, q, _fma(-2.0, d[3], _add(d[1], d[5])))]


def output_rows_new(m):
    s, d = _add(m[1], m[2]), _sub(m[1], m[2])
    return [_fma(0.125, m[4], _add(_add(m[0], s), m[3])),
            _fma(-0.25, m[4], _fma(0.5, m[3], d)),
            _fma(0.5, m[4], _fma(0.25, m[3], s)),
            _add(_fma(0.125, m[3], _sub(d, m[4])), m[5])]


def rows_2d(fn, x):
    """fn down the columns (axis 2), then along the rows (axis 3)."""
    cols = np.stack(fn([x[:, :, i] for i in range(x.shape[2])]), axis=2)
    return np.stack(fn([cols[:, :, :, j] for j in range(cols.shape[3])]), axis=3)


# (B^T, G, A^T) as the kernel applies them (the sequences above), exact.
KERNEL_OLD = (
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    [[Fr(1, 4), 0, 0], [Fr(-1, 6)] * 3, [Fr(-1, 6), Fr(1, 6), Fr(-1, 6)], [Fr(1, 24), Fr(1, 12), Fr(1, 6)],
     [Fr(1, 24), Fr(-1, 12), Fr(1, 6)], [0, 0, 1]],
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0],
     [0, 4, 0, -5, 0, 1]])
KERNEL_NEW = (
    [[1, 1, 1, 1, Fr(1, 8), 0], [0, 1, -1, Fr(1, 2), Fr(-1, 4), 0], [0, 1, 1, Fr(1, 4), Fr(1, 2), 0],
     [0, 1, -1, Fr(1, 8), -1, 1]],
    [[1, 0, 0], [Fr(1, 3)] * 3, [Fr(-1, 3), Fr(1, 3), Fr(-1, 3)], [Fr(-16, 15), Fr(-8, 15), Fr(-4, 15)],
     [Fr(4, 15), Fr(-8, 15), Fr(16, 15)], [0, 0, 1]],
    [[1, Fr(-3, 2), -2, Fr(3, 2), 1, 0], [0, -1, Fr(1, 2), Fr(5, 2), 1, 0], [0, 1, Fr(-5, 2), Fr(1, 2), 1, 0],
     [0, -2, -1, 2, 1, 0], [0, 1, -2, -1, 2, 0], [0, 1, Fr(-3, 2), -2, Fr(3, 2), 1]])


def check_exact(at, g, bt):
    for i in range(4):
        for k in range(3):
            for l in range(6):
                v = sum(Fr(at[i][j]) * Fr(g[j][k]) * Fr(bt[j][l]) for j in range(6))
                assert v == (1 if l == i + k else 0), "the matrices do not compute the correlation"


def kernel_error(layer, which, block):
    """The kernel's sequences on `layer`, products summed in blocks of `block` channels."""
    at, g, bt = KERNEL_OLD if which == "old" else KERNEL_NEW
    check_exact(at, g, bt)
    gf = np.array([[float(v) for v in row] for row in g])
    u = np.einsum("ik,ockl,jl->ocij", gf, layer.w.astype(np.float64), gf).astype(np.float32)
    v = rows_2d(input_rows_old if which == "old" else input_rows_new, layer.x)
    mm = None
    for c0 in range(0, v.shape[1], block):
        part = np.zeros((v.shape[0], u.shape[0], 6, 6), dtype=np.float32)
        for c in range(c0, min(v.shape[1], c0 + block)):
            part = fma32(v[:, None, c], u[None, :, c], part)
        mm = part if mm is None else _add(mm, part)
    y = rows_2d(output_rows_old if which == "old" else output_rows_new, mm)
    d = y.astype(np.float64) - layer.ref
    return np.linalg.norm(d) / np.linalg.norm(layer.ref), np.abs(d).max() / np.abs(layer.ref).max()


def parse_set(s):
    return [Fr(p) for p in s.split(",")]


def fmt(fr):
    return str(fr) if fr.denominator != 1 else str(fr.numerator)


def print_matrices(at, g, bt):
    for name, mat in (("B^T", bt), ("G", g), ("A^T", at)):
        print(name)
        for row in mat:
            print("  [" + ", ".join(f"{fmt(v):>7}" for v in row) + "]")


CANDIDATES = [
    "0,1,-1,2,-2",          # the standard set (Lavin & Gray)
    "0,1,-1,1/2,-1/2",
    "0,1,-1,1/2,-2",
    "0,1,-1,-1/2,2",
    "0,1,-1,2,1/2",
    "0,1,-1,3/2,-3/2",
    "0,1,-1,2/3,-2/3",
    "0,1,-1,3/4,-3/4",
    "0,1,-1,1/2,-3/2",
    "0,1/2,-1/2,2,-2",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--cin", default="64,256")
    ap.add_argument("--cout", type=int, default=8)
    ap.add_argument("--tiles", type=int, default=300)
    ap.add_argument("--print", dest="show")
    ap.add_argument("--plain", action="store_true", help="zero-mean inputs instead of post-ReLU")
    ap.add_argument("--kernel", action="store_true",
                    help="the kernel's own sequences, old and new, with the products' block sums")
    args = ap.parse_args()
    if args.show:
        at, g, bt = balance(*toom_cook(parse_set(args.show)))
        print_matrices(at, g, bt)
        return
    layers = [(cin, Layer(cin, args.cout, args.tiles, 6, 1000 + cin, not args.plain)) for cin in map(int, args.cin.split(","))]
    layers2 = [(cin, Layer(cin, args.cout, args.tiles * 4, 4, 1000 + cin, not args.plain)) for cin in map(int, args.cin.split(","))]
    for (cin, layer), (_, layer2) in zip(layers, layers2):
        print(f"cin {cin}: direct f32 rel L2 {direct_error(layer)[0]:.2e}; "
              f"F(2x2) 0,1,-1 rel L2 {winograd_error(layer2, *toom_cook([0, 1, -1], m=2))[0]:.2e}")
    if args.kernel:
        for cin, layer in layers:
            for which, block in (("old", 1 << 20), ("new", 1 << 20), ("new", 64), ("new", 32)):
                e = kernel_error(layer, which, block)
                print(f"cin {cin}: kernel {which} points, sums in blocks of {min(block, cin)}: "
                      f"L2 {e[0]:.2e} max {e[1]:.2e}", flush=True)
        return
    if args.search:
        pool = sorted({Fr(0), Fr(1), Fr(-1)} | {s * Fr(a, b) for s in (1, -1) for a, b in
                                                  ((2, 1), (1, 2), (3, 2), (2, 3), (3, 4), (4, 3), (3, 1), (1, 3), (1, 4), (4, 1))})
        sets = [",".join(fmt(p) for p in c) for c in itertools.combinations(pool, 5)]
    else:
        sets = CANDIDATES
    results = []
    for s in sets:
        try:
            mats = balance(*toom_cook(parse_set(s)))
        except AssertionError:
            continue
        errs = [winograd_error(layer, *mats) for _, layer in layers]
        results.append((max(e[0] for e in errs), s, errs))
        if not args.search:
            print(f"{s:>20}: " + "  ".join(f"cin {cin}: L2 {e[0]:.2e} max {e[1]:.2e}" for (cin, _), e in zip(layers, errs)))
            sys.stdout.flush()
    if args.search:
        results.sort()
        for worst, s, errs in results[:25]:
            print(f"{s:>24}: " + "  ".join(f"L2 {e[0]:.2e} max {e[1]:.2e}" for e in errs))


if __name__ == "__main__":
    main()
