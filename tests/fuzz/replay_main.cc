// A main() for fuzz targets that runs them without libFuzzer, so that every build (any
// compiler, with or without sanitizers) replays the checked-in corpus and a fixed set of
// generated inputs on each test run:
//
//   <target>_replay [--generated=N] [--seed=S] PATH...
//
// Each PATH is a file or a directory, read recursively; every file is one input, run in path
// order. Then N more inputs (default 3000), the same for the same seed S and the same files:
// mostly files changed by a few random edits (bit flips, byte changes, insertions, deletions,
// repeated ranges, splices of another file, 32-bit values), and some short runs of random
// bytes. Each input is passed in a heap block of exactly its size, as libFuzzer does, so that
// a sanitizer sees any read past its end.
//
// If an input crashes the target, it is written to ./replay-crash-<n> before the process dies,
// and its origin is printed; run `<target>_replay replay-crash-<n>` to replay it alone.
// Exit status: 0 after all inputs ran; 2 on bad arguments or when no input file was found.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Provided by the sanitizer runtimes; null when the program is built without them.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

constexpr size_t kDefaultGenerated = 3000;
constexpr uint64_t kDefaultSeed = 20240611;
// Generated inputs stay below this size, so that a run stays short.
constexpr size_t kMaxGeneratedBytes = 16 * 1024;

// The input being run, for the crash handler.
const uint8_t* g_current_data = nullptr;
size_t g_current_size = 0;
size_t g_current_number = 0;
const char* g_current_origin = "";
volatile sig_atomic_t g_dumped = 0;

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void WriteString(int fd, const char* s) { WriteAll(fd, s, std::strlen(s)); }

// Writes the input being run to ./replay-crash-<n>. Async-signal-safe.
void DumpCurrentInput() {
  if (g_dumped || g_current_data == nullptr) return;
  g_dumped = 1;
  char name[40] = "replay-crash-";
  char digits[24];
  size_t d = 0;
  size_t n = g_current_number;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  size_t at = std::strlen(name);
  while (d > 0) name[at++] = digits[--d];
  name[at] = '\0';
  const int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    WriteAll(fd, reinterpret_cast<const char*>(g_current_data), g_current_size);
    close(fd);
  }
  WriteString(STDERR_FILENO, "\nreplay: the input that crashed (");
  WriteString(STDERR_FILENO, g_current_origin);
  WriteString(STDERR_FILENO, ") is in ./");
  WriteString(STDERR_FILENO, name);
  WriteString(STDERR_FILENO, "\n");
}

void OnFatalSignal(int sig) {
  DumpCurrentInput();
  signal(sig, SIG_DFL);
  raise(sig);
}

// Installs OnFatalSignal where no one else (a sanitizer) handles the signal already.
void InstallCrashHandlers() {
  for (int sig : {SIGABRT, SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP}) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = OnFatalSignal;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
  if (__sanitizer_set_death_callback != nullptr) {
    __sanitizer_set_death_callback(DumpCurrentInput);
  }
}

// SplitMix64: small, fast, and the same sequence on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n). REQUIRES: n > 0.
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool OneIn(size_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

struct Input {
  std::string origin;
  std::string bytes;
};

// Bytes that often matter to a parser: bounds and the punctuation of text protocols.
constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '\r', '\n', ' ',
                                         '"',  '\'', '\\', '*',  '$',  '-',  '0',  '9'};
// 32-bit values that often matter to a binary format: offsets, lengths and their edges.
constexpr uint32_t kInterestingWords[] = {0,  1,   2,   4,      8,          12,         16,
                                          64, 255, 256, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff};

void Mutate(Random& rng, const std::vector<Input>& files, std::string* s) {
  // Half the time a single edit, which keeps most structured inputs valid past their checks.
  const size_t edits = rng.OneIn(2) ? 1 : 1 + rng.Below(8);
  for (size_t e = 0; e < edits; ++e) {
    switch (rng.Below(9)) {
      case 0:  // flip a bit
        if (!s->empty()) (*s)[rng.Below(s->size())] ^= static_cast<char>(1 << rng.Below(8));
        break;
      case 1:  // set a byte to a random or interesting value
        if (!s->empty()) {
          (*s)[rng.Below(s->size())] =
              rng.OneIn(2)
                  ? static_cast<char>(rng.Next())
                  : static_cast<char>(kInterestingBytes[rng.Below(std::size(kInterestingBytes))]);
        }
        break;
      case 2: {  // insert random bytes
        std::string bytes(1 + rng.Below(8), '\0');
        for (char& c : bytes) c = static_cast<char>(rng.Next());
        s->insert(rng.Below(s->size() + 1), bytes);
        break;
      }
      case 3:  // erase a range
        if (!s->empty()) {
          const size_t at = rng.Below(s->size());
          s->erase(at, 1 + rng.Below(std::min<size_t>(s->size() - at, 16)));
        }
        break;
      case 4:  // repeat a range
        if (!s->empty()) {
          const size_t at = rng.Below(s->size());
          const std::string range = s->substr(at, 1 + rng.Below(32));
          for (size_t times = 1 + rng.Below(4); times > 0; --times) {
            s->insert(rng.Below(s->size() + 1), range);
          }
        }
        break;
      case 5: {  // splice in a piece of another file
        const std::string& other = files[rng.Below(files.size())].bytes;
        if (!other.empty()) {
          const size_t at = rng.Below(other.size());
          s->insert(rng.Below(s->size() + 1), other.substr(at, 1 + rng.Below(64)));
        }
        break;
      }
      case 6:  // cut the end off
        if (!s->empty()) s->resize(rng.Below(s->size()));
        break;
      case 7:  // overwrite a 32-bit value, either byte order
        if (s->size() >= 4) {
          uint32_t v = rng.OneIn(4) ? static_cast<uint32_t>(s->size())
                                    : kInterestingWords[rng.Below(std::size(kInterestingWords))];
          if (rng.OneIn(4)) v = static_cast<uint32_t>(rng.Below(512));
          const size_t at = rng.Below(s->size() - 3);
          const bool big_endian = rng.OneIn(2);
          for (size_t i = 0; i < 4; ++i) {
            const size_t shift = big_endian ? 8 * (3 - i) : 8 * i;
            (*s)[at + i] = static_cast<char>(v >> shift);
          }
        }
        break;
      default:  // nudge a byte up or down
        if (!s->empty()) {
          char& c = (*s)[rng.Below(s->size())];
          c = static_cast<char>(c + (rng.OneIn(2) ? 1 : -1));
        }
        break;
    }
    if (s->size() > kMaxGeneratedBytes) s->resize(kMaxGeneratedBytes);
  }
}

std::string Generate(Random& rng, const std::vector<Input>& files, size_t number,
                     std::string* origin) {
  if (files.empty() || rng.OneIn(8)) {
    std::string s(rng.Below(64), '\0');
    for (char& c : s) {
      c = rng.OneIn(2)
              ? static_cast<char>(rng.Next())
              : static_cast<char>(kInterestingBytes[rng.Below(std::size(kInterestingBytes))]);
    }
    *origin = "generated #" + std::to_string(number) + ", random bytes";
    return s;
  }
  const Input& base = files[rng.Below(files.size())];
  std::string s = base.bytes;
  Mutate(rng, files, &s);
  *origin = "generated #" + std::to_string(number) + ", edits of " + base.origin;
  return s;
}

void Run(const std::string& bytes, size_t number, const std::string& origin) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  g_current_data = copy.get();
  g_current_size = bytes.size();
  g_current_number = number;
  g_current_origin = origin.c_str();
  LLVMFuzzerTestOneInput(copy.get(), bytes.size());
  g_current_data = nullptr;
}

bool ReadFile(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

bool ParseNumber(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

int Usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--generated=N] [--seed=S] PATH...\n", program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* program = argc > 0 ? argv[0] : "replay";
  uint64_t generated = kDefaultGenerated;
  uint64_t seed = kDefaultSeed;
  std::vector<std::filesystem::path> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, 12) == "--generated=") {
      if (!ParseNumber(arg.substr(12), &generated)) return Usage(program);
    } else if (arg.substr(0, 7) == "--seed=") {
      if (!ParseNumber(arg.substr(7), &seed)) return Usage(program);
    } else if (arg.substr(0, 2) == "--") {
      return Usage(program);
    } else {
      paths.emplace_back(arg);
    }
  }

  std::vector<std::filesystem::path> found;
  for (const std::filesystem::path& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path());
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      found.push_back(path);
    }
    if (ec) {
      std::fprintf(stderr, "%s: cannot read %s: %s\n", program, path.c_str(), ec.message().c_str());
      return 2;
    }
  }
  if (!paths.empty() && found.empty()) {
    std::fprintf(stderr, "%s: no input files found\n", program);
    return 2;
  }
  std::sort(found.begin(), found.end());

  std::vector<Input> files;
  for (const std::filesystem::path& path : found) {
    Input input;
    input.origin = path.filename().string();
    if (!ReadFile(path, &input.bytes)) {
      std::fprintf(stderr, "%s: cannot read %s\n", program, path.c_str());
      return 2;
    }
    files.push_back(std::move(input));
  }

  InstallCrashHandlers();
  const auto start = std::chrono::steady_clock::now();
  size_t number = 0;
  for (const Input& input : files) {
    Run(input.bytes, number++, "file " + input.origin);
  }
  Random rng(seed);
  for (uint64_t i = 0; i < generated; ++i) {
    std::string origin;
    const std::string bytes = Generate(rng, files, static_cast<size_t>(i), &origin);
    Run(bytes, number++, origin);
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("%s: ran %zu inputs (%zu files, %llu generated, seed %llu) in %lld ms\n",
              std::filesystem::path(program).filename().c_str(), number, files.size(),
              static_cast<unsigned long long>(generated), static_cast<unsigned long long>(seed),
              static_cast<long long>(elapsed.count()));
  return 0;
}
