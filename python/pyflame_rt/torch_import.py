"""PyTorch models into sessions: export to ONNX in memory (torch.onnx.export), then load.

    sess = rt.InferenceSession.from_pytorch(model, input_shapes={"x": [1, 3, 224, 224]})
    sess = rt.InferenceSession.from_pytorch("model.pt", input_shapes={"x": [1, 3, 224, 224]})
    sess = rt.InferenceSession.from_torchscript("model_scripted.pt", input_shapes={"x": [1, 16]})

Accepted: an nn.Module, a torch.save() checkpoint of a whole module, a TorchScript archive
(torch.jit.save). A checkpoint holding only a state_dict cannot be run without its class: build
the module, load_state_dict() and pass the module. Inputs are named and ordered as input_shapes;
the export traces the model once on random inputs of those shapes (dtype float32 unless
input_dtypes says otherwise). PyTorch comes from Debian's python3-torch.
"""

import io
import os
import zipfile

from .errors import InvalidArgument

_TORCH_HINT = ("this needs PyTorch, which is not installed: install Debian's python3-torch "
               "(apt-get install python3-torch)")


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError(_TORCH_HINT) from e
    return torch


def _example_inputs(torch, input_shapes, input_dtypes):
    if not isinstance(input_shapes, dict) or not input_shapes:
        raise InvalidArgument("input_shapes: expected a dict of input name -> shape, like "
                              "{'x': [1, 3, 224, 224]} (the export traces the model on inputs of these shapes), "
                              f"got {input_shapes!r}")
    input_dtypes = input_dtypes or {}
    unknown = set(input_dtypes) - set(input_shapes)
    if unknown:
        raise InvalidArgument(f"input_dtypes names {sorted(unknown)}, which input_shapes does not have")
    generator = torch.Generator().manual_seed(0)
    args = []
    for name, shape in input_shapes.items():
        try:
            dims = [int(d) for d in shape]
        except (TypeError, ValueError):
            raise InvalidArgument(f"input_shapes['{name}']: expected a list of ints, got {shape!r}") from None
        dtype = input_dtypes.get(name, torch.float32)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype.is_floating_point:
            args.append(torch.randn(dims, generator=generator).to(dtype))
        else:
            args.append(torch.zeros(dims, dtype=dtype))
    return tuple(args)


def load_module(path_or_module):
    """An nn.Module (eval mode) from a module, a torch.save checkpoint or a TorchScript file."""
    torch = _torch()
    if isinstance(path_or_module, torch.nn.Module):
        return path_or_module.eval()
    if not isinstance(path_or_module, (str, os.PathLike)):
        raise InvalidArgument("from_pytorch: expected an nn.Module or the path of a torch.save() checkpoint, got "
                              f"{type(path_or_module).__name__}")
    path = os.fspath(path_or_module)
    if not os.path.exists(path):
        from .errors import NoSuchFile
        raise NoSuchFile(f"from_pytorch: no such file '{path}'")
    if _is_torchscript(path):
        obj = torch.jit.load(path, map_location="cpu")
    else:
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        return obj.eval()
    if isinstance(obj, dict):
        raise InvalidArgument(f"'{path}' holds a state_dict ({len(obj)} tensors), not a module: build the module, "
                              "call load_state_dict() and pass the module to from_pytorch")
    raise InvalidArgument(f"'{path}' holds a {type(obj).__name__}, not an nn.Module")


def _is_torchscript(path):
    """TorchScript archives (torch.jit.save) are zip files with a constants.pkl; torch.save
    checkpoints are zip files without one (or older pickles)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(name.endswith("/constants.pkl") for name in z.namelist())


def export_onnx_bytes(module, input_shapes, input_dtypes=None, output_names=None, dynamic_batch=False,
                      opset_version=13):
    """The module exported as ONNX model bytes (nothing written to disk)."""
    torch = _torch()
    args = _example_inputs(torch, input_shapes, input_dtypes)
    input_names = list(input_shapes)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: "batch"} for name in input_names}
        for name in output_names or []:
            dynamic_axes[name] = {0: "batch"}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=int(opset_version), do_constant_folding=True)
    return buffer.getvalue()


def torchscript_module(path):
    """A TorchScript archive (torch.jit.save) loaded on the CPU."""
    torch = _torch()
    path = os.fspath(path)
    if not os.path.exists(path):
        from .errors import NoSuchFile
        raise NoSuchFile(f"from_torchscript: no such file '{path}'")
    return torch.jit.load(path, map_location="cpu").eval()
