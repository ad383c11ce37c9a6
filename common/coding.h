// Byte coding helpers: fixed-width little-endian integers for values, big-endian for keys
// (so that byte order is numeric order), and CRC-32C (Castagnoli) for checksums.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace common {

void PutFixed32(std::string* dst, uint32_t v);
void PutFixed64(std::string* dst, uint64_t v);
// Big-endian: lexicographic byte order equals numeric order (keys, length prefixes).
void PutBigEndian32(std::string* dst, uint32_t v);
void PutBigEndian64(std::string* dst, uint64_t v);
// The 4 bytes at dst / src. REQUIRES: 4 bytes there.
void EncodeBigEndian32(char* dst, uint32_t v);
uint32_t DecodeBigEndian32(const char* src);

// Each Get* reads from the front of *in and advances it; returns false if *in is too short.
bool GetFixed32(std::string_view* in, uint32_t* v);
bool GetFixed64(std::string_view* in, uint64_t* v);
bool GetBigEndian64(std::string_view* in, uint64_t* v);

// CRC-32C of `data`, continuing from `crc` (0 to start). Uses the CPU's crc32 instruction
// where there is one (x86-64 with SSE 4.2).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);
// The same, a table lookup per byte on any CPU (tests compare the two).
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

}  // namespace common
