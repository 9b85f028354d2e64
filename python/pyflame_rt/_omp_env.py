"""libgomp's wait policy, chosen before the extension loads libgomp (libgomp reads the environment
once, when it is loaded). Its default spins idle workers for milliseconds after each parallel
region; on cores other processes keep busy a spinning worker takes the core its descheduled
teammate needs and 2-thread runs collapse. A process that starts on a loaded machine (1-minute
load average, or the processes runnable right now besides this one, >= online CPUs) gets
OMP_WAIT_POLICY=passive, unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. Nothing is set when
libgomp is already loaded (e.g. torch imported first): it has read its environment. The same rule as the CLI's:
devices/cpu/omp_wait_policy.cpp (choose_omp_wait_setting).
"""

import os


def choose_omp_wait_setting(environ, load_1min, runnable_others, online_cpus):
    """(name, value) to set, or None: the user chose, or no known load figure (None: unknown)
    reaches the CPU count."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ or not online_cpus:
        return None
    if not any(x is not None and x >= online_cpus for x in (load_1min, runnable_others)):
        return None
    return ("OMP_WAIT_POLICY", "passive")


def read_load_figures():
    """(1-minute load average, runnable processes besides this one), None where unreadable."""
    load = running = None
    try:
        load = os.getloadavg()[0]
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("procs_running "):
                    running = int(line.split()[1]) - 1  # this thread is running
    except (OSError, ValueError):
        pass
    return load, running


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
    APPLIED = choose_omp_wait_setting(os.environ, *read_load_figures(), os.sysconf("SC_NPROCESSORS_ONLN"))
    if APPLIED:
        os.environ.setdefault(*APPLIED)
