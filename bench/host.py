"""What a benchmark table says about the machine it ran on: the CPU's name, the instruction
sets our kernels choose between at run time, and the load. The CPU model changes between
machines (and "Intel(R) Xeon(R) Processor" alone does not say whether AVX-512 is there), so
every table carries all three."""
import os
import platform

# The features the CPU device's kernels (and oneDNN's) are chosen by.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16")


def _cpuinfo_field(name):
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return None


def cpu_model():
    return _cpuinfo_field("model name") or platform.processor() or "?"


def cpu_flags():
    flags = set((_cpuinfo_field("flags") or "").split())
    return [f for f in KERNEL_FLAGS if f in flags]


def describe():
    """One line for a table's header: model, cores, kernel-relevant flags, load average."""
    load = os.getloadavg()[0]
    return f"{cpu_model()}, {os.cpu_count()} cores, flags {' '.join(cpu_flags()) or 'none of ' + '/'.join(KERNEL_FLAGS)}, load average {load:.1f}"
