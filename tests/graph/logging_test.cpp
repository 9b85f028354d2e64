#include "graph/logging.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pyflame_rt {
namespace {

// Collects what reaches the sinks; the process default is restored afterwards.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = default_log_severity();
    set_log_to_stderr(false);
    handle_ = add_log_sink([this](LogSeverity s, const std::string& id, const std::string& m) {
      lines_.push_back(std::string(log_severity_letter(s)) + ":" + id + ":" + m);
    });
  }
  void TearDown() override {
    remove_log_sink(handle_);
    set_log_to_stderr(true);
    set_default_log_severity(saved_);
  }
  std::vector<std::string> lines_;
  uint64_t handle_ = 0;
  int saved_ = 2;
};

TEST_F(LoggingTest, DefaultThresholdIsWarning) {
  set_default_log_severity(2);
  log_at(LogSeverity::kInfo, LogScope{"s1"}, "hidden");
  log_at(LogSeverity::kWarning, LogScope{"s1"}, "shown ", 3);
  log_at(LogSeverity::kError, LogScope{"s1"}, "also shown");
  EXPECT_EQ(lines_, (std::vector<std::string>{"W:s1:shown 3", "E:s1:also shown"}));
}

TEST_F(LoggingTest, ScopeSeverityOverridesTheDefault) {
  set_default_log_severity(3);
  log_at(LogSeverity::kWarning, LogScope{"quiet"}, "dropped");
  log_at(LogSeverity::kVerbose, LogScope{"chatty", 0}, "kept");
  EXPECT_EQ(lines_, (std::vector<std::string>{"V:chatty:kept"}));
}

TEST_F(LoggingTest, SeverityIsClampedToOrtRange) {
  EXPECT_EQ(set_default_log_severity(9), 4);
  EXPECT_EQ(set_default_log_severity(-3), 0);
}

TEST_F(LoggingTest, VerboseLinesNeedVerbosity) {
  LogScope scope{"v", 0, 0};
  log_message(LogSeverity::kVerbose, scope, "level 1", 1);
  scope.verbosity = 1;
  log_message(LogSeverity::kVerbose, scope, "level 1 again", 1);
  EXPECT_EQ(lines_, (std::vector<std::string>{"V:v:level 1 again"}));
}

}  // namespace
}  // namespace pyflame_rt
