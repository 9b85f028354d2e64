#!/usr/bin/python3
"""Generates the ONNX backend node test cases from Debian's python3-onnx into OUTDIR/node.

    /usr/bin/python3 tests/tools/gen_node_tests.py OUTDIR

python3-onnx 1.12's generator uses numpy aliases removed in numpy 1.24 (np.float, np.int,
...): they are restored as the builtins they always were before importing it. Does nothing
when OUTDIR already holds a complete generation (stamp file).
"""

import os
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    stamp = os.path.join(out, ".generated")
    if os.path.exists(stamp):
        return
    import warnings

    import numpy as np
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on touching the removed names
        for alias, builtin in [("float", float), ("int", int), ("bool", bool), ("object", object),
                               ("complex", complex), ("str", str)]:
            setattr(np, alias, builtin)
    from onnx.backend.test.cmd_tools import main as onnx_main
    sys.argv = ["onnx-backend-test", "generate-data", "-o", out]
    onnx_main()
    count = len(os.listdir(os.path.join(out, "node")))
    with open(stamp, "w") as f:
        f.write(f"{count}\n")
    print(f"generated {count} ONNX node test cases into {out}/node")


if __name__ == "__main__":
    main()
