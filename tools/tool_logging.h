// The log of a command-line tool (jigdoofus-cat, jigdoofus-ctl): spdlog to
// standard error, each line "NAME: LEVEL: message". Call once, first.
#pragma once

#include <memory>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace jigdoofus {

inline void SetUpToolLogging(const std::string& name, const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern(name + ": %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace jigdoofus
