"""OrtValue and IOBinding: ONNX Runtime's way to keep inputs and outputs on the engine's side.

    io = sess.io_binding()
    io.bind_cpu_input("x", x)
    y = np.empty((1, 4), np.float32)
    io.bind_output("y", "cpu", 0, np.float32, y.shape, y.ctypes.data)   # written in place
    sess.run_with_iobinding(io)
    io.copy_outputs_to_cpu()        # [array]: y itself was filled by the run
"""

from . import _pyflame_rt
from .errors import InvalidArgument

OrtValue = _pyflame_rt.OrtValue


def _check_cpu(what, device_type, device_id):
    if str(device_type).lower() != "cpu" or int(device_id) != 0:
        raise InvalidArgument(f"{what}: device '{device_type}' id {device_id} is not available in this build; "
                              "expected 'cpu' id 0")


class IOBinding:
    """Inputs and outputs bound to a session for run_with_iobinding (ONNX Runtime's IOBinding)."""

    def __init__(self, session):
        self._session = session
        self._inputs = {}
        self._outputs = []       # names, in binding order
        self._bound = {}         # name -> OrtValue receiving that output
        self._results = []
        self._in_place = []      # bound outputs the last run wrote straight into their buffers

    # Inputs -------------------------------------------------------------------------------
    def bind_cpu_input(self, name, arr_on_cpu):
        """Binds a numpy array (shared, not copied) as input `name`."""
        try:
            self._inputs[name] = OrtValue.ortvalue_from_numpy(arr_on_cpu)
        except TypeError:  # pybind11's "incompatible function arguments": ours, naming the input
            raise InvalidArgument(f"bind_cpu_input('{name}'): expected a numpy array, got "
                                  f"{type(arr_on_cpu).__name__}") from None

    def bind_input(self, name, device_type, device_id, element_type, shape, buffer_ptr):
        """Binds memory at buffer_ptr (kept alive by the caller) as input `name`."""
        _check_cpu(f"bind_input('{name}')", device_type, device_id)
        self._inputs[name] = OrtValue.from_pointer(int(buffer_ptr), element_type, [int(d) for d in shape])

    def bind_ortvalue_input(self, name, ortvalue):
        self._inputs[name] = ortvalue

    def clear_binding_inputs(self):
        self._inputs = {}

    def synchronize_inputs(self):
        """Nothing to wait for: inputs live in host memory."""

    # Outputs ------------------------------------------------------------------------------
    def bind_output(self, name, device_type="cpu", device_id=0, element_type=None, shape=None, buffer_ptr=None):
        """Binds output `name`: with buffer_ptr (and element_type, shape) the run writes into
        that memory; without, the run allocates it (get_outputs())."""
        _check_cpu(f"bind_output('{name}')", device_type, device_id)
        if buffer_ptr is None:
            self._bound.pop(name, None)
        else:
            if element_type is None or shape is None:
                raise InvalidArgument(f"bind_output('{name}'): a buffer_ptr needs element_type and shape")
            self._bound[name] = OrtValue.from_pointer(int(buffer_ptr), element_type, [int(d) for d in shape])
        self._add_output(name)

    def bind_ortvalue_output(self, name, ortvalue):
        """The run writes output `name` into ortvalue's buffer (same dtype and shape)."""
        self._bound[name] = ortvalue
        self._add_output(name)

    def _add_output(self, name):
        if name not in self._outputs:
            self._outputs.append(name)

    def clear_binding_outputs(self):
        self._outputs, self._bound, self._results, self._in_place = [], {}, [], []

    def synchronize_outputs(self):
        """Nothing to wait for: outputs are complete when run_with_iobinding returns."""

    def get_outputs(self):
        """The outputs of the last run as OrtValues (the bound ones are the caller's)."""
        return list(self._results)

    def get_outputs_as_ortvaluevector(self):
        return self.get_outputs()

    def outputs_written_in_place(self):
        """Names of the bound outputs the last run wrote straight into their buffers (no copy).

        A pyflame_rt extension. A bound output is written in place when the native CPU kernel
        that computes it last writes the bound dtype and shape in the plain row-major layout;
        it is copied in after the run when a reference kernel, a channel-blocked layout or a
        view of another value produces it, or when its buffer overlaps an input."""
        return list(self._in_place)

    def copy_outputs_to_cpu(self):
        """The outputs of the last run as numpy arrays (copies)."""
        return [v.numpy() for v in self._results]

    # Used by InferenceSession.run_with_iobinding.
    def _run(self, native, run_options):
        outputs = self._outputs or [o.name for o in self._session.get_outputs()]
        self._results, self._in_place = native.run_with_binding(self._inputs, outputs, self._bound, run_options)
