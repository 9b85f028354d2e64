"""libgomp's wait setting, chosen before the extension loads libgomp (libgomp reads the environment
once, when it is loaded). Its default spins idle workers for milliseconds after each parallel
region; on cores other processes keep busy a spinning worker takes the core its descheduled
teammate needs and 2-thread runs collapse, while the passive policy (block at once) costs 10-40%
at 2 threads on quiet cores. So idle workers spin briefly and then block: GOMP_SPINCOUNT=10000,
unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. Nothing is set when libgomp is already
loaded (e.g. torch imported first): it has read its environment. The same rule as the CLI's:
devices/cpu/omp_wait_policy.h (choose_omp_wait_setting, kBriefSpinCount).
"""

import os

BRIEF_SPIN_COUNT = "10000"  # devices/cpu/omp_wait_policy.h kBriefSpinCount


def choose_omp_wait_setting(environ):
    """(name, value) to set, or None when the user chose (an empty value counts as a choice)."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return None
    return ("GOMP_SPINCOUNT", BRIEF_SPIN_COUNT)


def libgomp_loaded():
    """True when libgomp is already in this process (torch imported first, ...): it has read its
    environment, and setting a variable now would only mislead."""
    try:
        with open("/proc/self/maps") as f:
            return any("libgomp" in line for line in f)
    except OSError:
        return False


APPLIED = None
if not libgomp_loaded():
    APPLIED = choose_omp_wait_setting(os.environ)
    if APPLIED:
        os.environ.setdefault(*APPLIED)
