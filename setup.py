"""pip install --no-build-isolation .  (offline: Debian's python3-setuptools, python3-wheel, pybind11-dev)

Builds the _pyflame_rt and _pyflame_rt_serving extensions with CMake (in ./build, or $PYFLAME_RT_BUILD_DIR; an existing
`make build` tree is reused, so the install costs a link at most) and installs the pyflame_rt
package for the interpreter running pip (use /usr/bin/python3: it sees numpy and onnx).
The version is read from CMakeLists.txt's project(PyFlameRT VERSION ...), its one home.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(ROOT, "build", "setuptools"), exist_ok=True)  # setup.cfg's egg_base


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        match = re.search(r"project\(PyFlameRT\s+VERSION\s+([0-9.]+)", f.read())
    if not match:
        raise RuntimeError("CMakeLists.txt: project(PyFlameRT VERSION x.y.z) not found")
    return match.group(1)


class CMakeBuildPy(build_py):
    """build_py that first builds the extension with CMake and adds it to the package."""

    def run(self):
        build_dir = os.path.abspath(os.environ.get("PYFLAME_RT_BUILD_DIR", os.path.join(ROOT, "build")))
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=Release", f"-DPython_EXECUTABLE={sys.executable}"])
        jobs = os.environ.get("PYFLAME_RT_JOBS", "2")
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "_pyflame_rt", "_pyflame_rt_serving", "pyflame_rt_py", "-j", jobs])
        super().run()
        target = os.path.join(self.build_lib, "pyflame_rt")
        os.makedirs(target, exist_ok=True)
        built = glob.glob(os.path.join(build_dir, "python", "pyflame_rt", "_pyflame_rt*.so"))
        if not built:
            raise RuntimeError(f"the extension was not built in {build_dir}/python/pyflame_rt")
        for path in built:
            shutil.copy2(path, target)
        # Modules generated at build time (the gRPC stubs of net/proto) ship with the package.
        for path in glob.glob(os.path.join(build_dir, "python", "pyflame_rt", "*_pb2*.py")):
            shutil.copy2(path, target)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: the package carries a compiled module
        return True


setup(
    version=project_version(),
    packages=["pyflame_rt", "pyflame_rt.capi"],
    package_dir={"pyflame_rt": "python/pyflame_rt"},
    cmdclass={"build_py": CMakeBuildPy},
    distclass=BinaryDistribution,
)
