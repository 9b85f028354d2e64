#!/usr/bin/env bash
# Installs the Debian packages PyFlameRT builds and tests with, only those that are missing,
# so a second `make` costs a dpkg query and nothing more.
set -euo pipefail

packages=(
  cmake ninja-build ccache g++ pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev
  libcaf-dev libasio-dev libzmq3-dev cppzmq-dev libeigen3-dev nlohmann-json3-dev
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
  libgrpc++-dev protobuf-compiler-grpc
  libspdlog-dev nlohmann-json3-dev libcli11-dev libboost-dev curl libxxhash-dev
  libgtest-dev libgmock-dev pybind11-dev python3-dev
  python3-numpy python3-onnx python3-pytest python3-tqdm python3-matplotlib
  python3-pip python3-setuptools python3-wheel
  python3-torch python3-torchvision python3-grpcio python3-grpc-tools
  clang-14 libclang-rt-14-dev  # make fuzz (libFuzzer, ASan, UBSan); make sanitize uses g++
  nodejs npm
  # net/ gRPC + ZeroMQ side: JSON headers, the C++ HTTP client, their tests, FastAPI, k8s lint
  nlohmann-json3-dev libboost-dev python3-zmq python3-fastapi python3-uvicorn python3-httpx yamllint
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js may come from outside Debian (node and npm already on PATH): that is fine.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
