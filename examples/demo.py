#!/usr/bin/python3
"""The main demo (`make run`): loads the bundled example models on the default CPU device,
shows their metadata, classifies a batch of images and runs an audio encoder chunk by chunk
with its hidden state carried between chunks by a stream (checked against one whole-sequence
run), and sends single-image requests through the batching actor.
"""

import os
import time

import numpy as np

import pyflame_rt as rt

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def describe(name, sess):
    print(f"{name}: providers {sess.get_providers()}")
    for arg in sess.get_inputs():
        print(f"  input  {arg.name:10s} {arg.type:16s} {arg.shape}")
    for arg in sess.get_outputs():
        print(f"  output {arg.name:10s} {arg.type:16s} {arg.shape}")


def classify_images():
    sess = rt.InferenceSession(os.path.join(MODELS, "tiny_cnn.onnx"),
                               providers=["CPUExecutionProvider"])
    describe("tiny_cnn", sess)
    images = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    start = time.perf_counter()
    (probs,) = sess.run(None, {"image": images})
    ms = (time.perf_counter() - start) * 1e3
    assert probs.shape == (4, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    print(f"  batch of 4 images in {ms:.2f} ms -> classes {probs.argmax(axis=1).tolist()}")


def stream_audio():
    sess = rt.InferenceSession(os.path.join(MODELS, "tiny_gru.onnx"))
    describe("tiny_gru", sess)
    features = np.random.default_rng(1).standard_normal((1, 100, 40)).astype(np.float32)
    whole, _ = sess.run(None, {"features": features, "h": np.zeros((1, 1, 64), np.float32)})
    stream = sess.create_stream(stateful=True)  # h <- h_out found from the names and shapes
    pieces = []
    for start in range(0, 100, 25):  # four chunks of 25 frames, state fed back by the stream
        embedding, _ = stream.process(features[:, start:start + 25])
        pieces.append(embedding)
    chunked = np.concatenate(pieces, axis=1)
    err = float(np.abs(chunked - whole).max())
    assert err < 1e-5, err
    print(f"  stream {stream.state_pairs}: 4 chunks of 25 frames == one run of 100 frames (max diff {err:.1e})")


def batch_requests():
    sess = rt.InferenceSession(os.path.join(MODELS, "tiny_cnn.onnx"))
    images = [{"image": np.random.default_rng(i).standard_normal((1, 3, 32, 32)).astype(np.float32)}
              for i in range(32)]
    start = time.perf_counter()
    results = sess.run_batch(None, images, max_batch_size=8)
    ms = (time.perf_counter() - start) * 1e3
    for feed, (probs,) in zip(images, results):
        assert np.allclose(probs, sess.run(None, feed)[0], atol=1e-5)
    print(f"  run_batch: 32 single-image requests through the batching actor in {ms:.2f} ms")


if __name__ == "__main__":
    print(f"PyFlameRT {rt.__version__} demo")
    classify_images()
    stream_audio()
    batch_requests()
    print("demo OK")
