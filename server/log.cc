#include "server/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace server {

spdlog::level::level_enum SpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
    case LogLevel::kVerbose:
      return spdlog::level::debug;
    case LogLevel::kNotice:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
  }
  return spdlog::level::info;
}

common::Status InitLogging(const Config& config) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (config.logfile.empty()) {
      logger = std::make_shared<spdlog::logger>("raftkv",
                                                std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "raftkv", std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.logfile));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return common::Status::IOError("cannot open logfile '" + config.logfile + "': " + e.what());
  }
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%P] [%l] %v");
  logger->set_level(SpdlogLevel(config.loglevel));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return common::Status::OK();
}

}  // namespace server
