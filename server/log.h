// Logging for raftkv-server: one process-wide spdlog logger, set up from `loglevel` and
// `logfile` (docs/configuration.md). Lines look like
//   [2026-11-28 10:00:00.123] [1234] [info] node 1 serving clients on 127.0.0.1:7001
// Redis's levels map to spdlog's: debug and verbose -> debug, notice -> info, warning -> warn.
// Every line is flushed as it is written, so that a crash loses nothing already logged (the
// server logs per event, never per request).
//
// Thread-safety: spdlog's loggers are thread-safe; InitLogging runs once, before any thread.
#pragma once

#include <spdlog/spdlog.h>

#include "common/status.h"
#include "server/config.h"

namespace server {

// Makes the default spdlog logger write to `config.logfile` (appending; standard output when
// empty) at `config.loglevel`. Returns IOError when the file cannot be opened.
common::Status InitLogging(const Config& config);

// The spdlog level for a configured level.
spdlog::level::level_enum SpdlogLevel(LogLevel level);

}  // namespace server
