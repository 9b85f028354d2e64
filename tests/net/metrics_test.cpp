#include "net/metrics.h"

#include <gtest/gtest.h>

namespace pyflame_rt::net {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Histogram, CumulativeBucketsAndSum) {
  Histogram h({10, 100});
  h.observe(5);
  h.observe(10);   // on the bound: counted in le=10
  h.observe(50);
  h.observe(500);  // +Inf
  auto c = h.cumulative();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], 2u);
  EXPECT_EQ(c[1], 3u);
  EXPECT_EQ(c[2], 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 565.0);
  EXPECT_EQ(h.count(), 4u);
}

TEST(Metrics, RendersPrometheusTextPerModel) {
  Metrics metrics;
  auto m = metrics.model("tiny_cnn", "1");
  m->record_success(120, 20, 80, 4);
  m->record_success(300, 100, 150, 1);
  m->record_failure("invalid_argument");
  m->record_failure("invalid_argument");
  m->record_failure("queue_full");
  m->record_execution(2);
  m->enter();
  metrics.record_server_failure("not_found");
  EXPECT_EQ(metrics.model("tiny_cnn", "1").get(), m.get());  // one object per model version

  std::string text = metrics.render();
  EXPECT_TRUE(has_line(text, "# TYPE pyflame_inference_request_success_total counter")) << text;
  EXPECT_TRUE(has_line(text, "pyflame_inference_request_success_total{model=\"tiny_cnn\",version=\"1\"} 2"));
  EXPECT_TRUE(has_line(
      text, "pyflame_inference_request_failure_total{model=\"tiny_cnn\",version=\"1\",reason=\"invalid_argument\"} 2"));
  EXPECT_TRUE(
      has_line(text, "pyflame_inference_request_failure_total{model=\"tiny_cnn\",version=\"1\",reason=\"queue_full\"} 1"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_count_total{model=\"tiny_cnn\",version=\"1\"} 5"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_exec_count_total{model=\"tiny_cnn\",version=\"1\"} 1"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_in_flight{model=\"tiny_cnn\",version=\"1\"} 1"));
  EXPECT_TRUE(has_line(text, "# TYPE pyflame_inference_request_duration_us histogram"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_request_duration_us_bucket{model=\"tiny_cnn\",version=\"1\",le=\"200\"} 1"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_request_duration_us_bucket{model=\"tiny_cnn\",version=\"1\",le=\"+Inf\"} 2"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_request_duration_us_sum{model=\"tiny_cnn\",version=\"1\"} 420"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_queue_duration_us_count{model=\"tiny_cnn\",version=\"1\"} 2"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_batch_size_bucket{model=\"tiny_cnn\",version=\"1\",le=\"1\"} 0"));
  EXPECT_TRUE(has_line(text, "pyflame_inference_batch_size_bucket{model=\"tiny_cnn\",version=\"1\",le=\"2\"} 1"));
  EXPECT_TRUE(has_line(text, "pyflame_server_request_failure_total{reason=\"not_found\"} 1"));
}

TEST(Metrics, EscapesLabelValues) {
  Metrics metrics;
  metrics.model("a\"b", "1")->record_success(1, 1, 1, 1);
  EXPECT_NE(metrics.render().find("model=\"a\\\"b\""), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt::net
