// A main for a libFuzzer target built without libFuzzer: runs each input once through
// LLVMFuzzerTestOneInput, as `target -runs=0 corpus` does, and stops at the first crash (a
// sanitizer report, an abort, a finding). `make sanitize-asan-kernel-run` links kernel_run's
// harness with it in the ASan + UBSan build (GCC), so a corpus can be replayed under ASan on the
// build the sanitizer tests already need, without a second, clang build of the whole runtime.
//
//   kernel_run_replay [-timeout=SECONDS] [-list=FILE] [FILE_OR_DIRECTORY...]
//
// A directory means its regular files, in name order; -list names one input per line. Each
// input is announced ("Running: PATH") before it runs and reported after ("Executed PATH in N
// ms"), so a run that ends early names the input that ended it. An input that runs past
// -timeout (default 120) ends the process with exit status 70 (libFuzzer's timeout status).
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

const char* g_current = "";
unsigned g_timeout_s = 120;

void on_alarm(int) {
  // Only async-signal-safe calls here.
  const char* head = "ERROR: replay: timeout: ";
  (void)!write(2, head, std::strlen(head));
  (void)!write(2, g_current, std::strlen(g_current));
  (void)!write(2, "\n", 1);
  _exit(70);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void add_directory(const std::string& dir, std::vector<std::string>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) {
    std::fprintf(stderr, "replay: cannot open directory %s\n", dir.c_str());
    std::exit(2);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!is_directory(dir + "/" + name)) names.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  out.insert(out.end(), names.begin(), names.end());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("-timeout=", 0) == 0) {
      g_timeout_s = static_cast<unsigned>(std::strtoul(arg.c_str() + 9, nullptr, 10));
    } else if (arg.rfind("-list=", 0) == 0) {
      std::ifstream list(arg.substr(6));
      if (!list) {
        std::fprintf(stderr, "replay: cannot read the list %s\n", arg.c_str() + 6);
        return 2;
      }
      for (std::string line; std::getline(list, line);) {
        if (!line.empty()) inputs.push_back(line);
      }
    } else if (is_directory(arg)) {
      add_directory(arg, inputs);
    } else {
      inputs.push_back(arg);
    }
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  signal(SIGALRM, on_alarm);

  const auto start = std::chrono::steady_clock::now();
  size_t executed = 0;
  for (const std::string& path : inputs) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
      return 2;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    g_current = path.c_str();
    std::fprintf(stderr, "Running: %s\n", path.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    alarm(g_timeout_s);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    alarm(0);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    std::fprintf(stderr, "Executed %s in %lld ms\n", path.c_str(), static_cast<long long>(ms.count()));
    ++executed;
  }
  const auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "replay: executed %zu inputs in %.1f s\n", executed, s);
  return 0;
}
