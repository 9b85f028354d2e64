#!/usr/bin/python3
"""Streaming audio: 16 kHz audio fed in chunks to a model that works on 1 s windows with
100 ms of overlap; the frames the overlap repeats are not reported twice.

    PYTHONPATH=build/python /usr/bin/python3 examples/audio_stream.py

The model (built here with onnx's helper) cuts its window into 10 ms frames and returns the
log energy of each. Chunks arrive in any size, as from a sound card; the stream assembles
windows, and the energies of all chunks together equal one pass over the whole recording.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt

RATE = 16000
FRAME = 160  # 10 ms


def frame_energy_model():
    shape = numpy_helper.from_array(np.array([1, -1, FRAME], np.int64), "frames_shape")
    eps = numpy_helper.from_array(np.array(1e-6, np.float32), "eps")
    nodes = [
        helper.make_node("Reshape", ["audio", "frames_shape"], ["frames"]),
        helper.make_node("Mul", ["frames", "frames"], ["power"]),
        helper.make_node("ReduceMean", ["power"], ["mean_power"], axes=[2], keepdims=0),
        helper.make_node("Add", ["mean_power", "eps"], ["safe_power"]),
        helper.make_node("Log", ["safe_power"], ["energy"]),
    ]
    graph = helper.make_graph(
        nodes, "frame_energy",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("energy", TensorProto.FLOAT, [1, "frames"])],
        initializer=[shape, eps])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def audio_chunks(audio, rng):
    """Chunks of 20 to 700 ms, as a capture device might deliver them."""
    pos = 0
    while pos < audio.shape[1]:
        n = int(rng.integers(RATE // 50, RATE * 7 // 10))
        yield audio[:, pos:pos + n]
        pos += n


def main():
    rng = np.random.default_rng(0)
    seconds = 5
    t = np.arange(seconds * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.5) + 0.01 * rng.standard_normal(t.size))
    audio = audio.astype(np.float32)[None, :]
    session = rt.InferenceSession(frame_energy_model())
    stream = session.create_stream(chunk_size=RATE, overlap=RATE // 10, time_aligned_outputs=["energy"],
                                   name="microphone")
    energies = []
    for chunk in audio_chunks(audio, rng):
        result = stream.process(chunk)
        if result:
            energies.append(result[0])
            print(f"chunk of {chunk.shape[1]:5d} samples -> {result[0].shape[1]:3d} new frames")
    energies.append(stream.flush()[0])  # end of stream: the last partial window
    streamed = np.concatenate(energies, axis=1)
    whole = session.run(None, {"audio": audio})[0]
    assert streamed.shape == whole.shape, (streamed.shape, whole.shape)
    err = float(np.abs(streamed - whole).max())
    assert err < 1e-4, err
    print(f"{stream.windows_run} windows, {streamed.shape[1]} frames == one pass over {seconds} s "
          f"(max diff {err:.1e})")


if __name__ == "__main__":
    main()
