// A stand-alone driver for libFuzzer targets: runs LLVMFuzzerTestOneInput once over every file
// named on the command line, or in the directories named there (recursively, in sorted order),
// so a corpus runs as a regression test with any compiler and without libFuzzer.
// Exit status: 0 when every input ran, 1 when a path is missing or unreadable, 2 on no inputs.
// A failing input aborts inside the target, so the last "running" line names it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool ReadFile(const std::filesystem::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "fuzz_main: no such file or directory: %s\n", argv[i]);
      return 1;
    }
    if (ec) {
      std::fprintf(stderr, "fuzz_main: %s: %s\n", argv[i], ec.message().c_str());
      return 1;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "fuzz_main: no inputs (usage: %s FILE_OR_DIR...)\n", argv[0]);
    return 2;
  }
  std::string data;
  for (const fs::path& path : inputs) {
    if (!ReadFile(path, data)) {
      std::fprintf(stderr, "fuzz_main: cannot read %s\n", path.c_str());
      return 1;
    }
    std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), data.size());
    // A copy in its own allocation, so out-of-bounds reads past the input are caught by ASan.
    std::vector<uint8_t> copy(data.begin(), data.end());
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
  }
  std::fprintf(stderr, "fuzz_main: %zu inputs ran\n", inputs.size());
  return 0;
}
