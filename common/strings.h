// Small string helpers shared by the state machine, the command table and the configuration.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace common {

// Redis's string2ll: an optional '-', then digits with no leading zero (except "0" itself), no
// spaces, no "+", not "-0", within int64. How Redis reads integer arguments (INCRBY, SELECT,
// SCAN COUNT, ...) and integer values (INCR).
bool ParseInt64(std::string_view s, int64_t* out);

// `s` with ASCII letters in lower case (command and option names).
std::string AsciiLower(std::string_view s);

}  // namespace common
