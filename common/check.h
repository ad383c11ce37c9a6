// CHECK and PANIC: for broken invariants, which are bugs. They print where and why, then
// abort, in every build type. Expected failures use Status (status.h) instead.
//
//   CHECK(commit_index_ <= last_index) << "commit " << commit_index_;
//   PANIC() << "term went backwards: " << term;
#pragma once

#include <sstream>

namespace common {

// Collects a failure message and aborts the process when destroyed.
class FatalMessage {
 public:
  FatalMessage(const char* file, int line, const char* condition);
  [[noreturn]] ~FatalMessage();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets the CHECK macro be an expression whose stream is optional.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace common

#define CHECK(condition) \
  (condition)            \
      ? (void)0          \
      : ::common::Voidify() & ::common::FatalMessage(__FILE__, __LINE__, #condition).stream()

#define PANIC() ::common::FatalMessage(__FILE__, __LINE__, "PANIC").stream()

// DCHECK is checked in debug builds only (NDEBUG unset).
#ifdef NDEBUG
#define DCHECK(condition) \
  while (false) CHECK(condition)
#else
#define DCHECK(condition) CHECK(condition)
#endif
