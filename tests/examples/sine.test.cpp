// The sine-regression example's code path: flags, a short run, the report, the figure.
#include <sine_regression.hpp>

#include <catch.hpp>
#include <json.hpp>

#include <cstdlib>
#include <string>

namespace {
sine::Config short_run() {
  sine::Config c;
  c.iterations = 1000;
  c.eval_tasks = 60;
  c.quiet = true;
  return c;
}
}  // namespace

TEST_CASE("sine example: a short run reports every row, and MAML beats the pretrained baseline", "[example]") {
  const sine::Report r = sine::run(short_run());
  REQUIRE(r.eval.size() == 6);
  for (const auto& row : r.eval) {
    CHECK(row.steps == std::vector<int>{0, 1, 5, 10});
    REQUIRE(row.mse.size() == 4);
    REQUIRE(row.ci95.size() == 4);
    for (std::size_t s = 0; s < 4; ++s) {
      CHECK(std::isfinite(row.mse[s]));
      CHECK(row.ci95[s] >= 0);
    }
  }
  auto find = [&](const std::string& method, int shots) -> const sine::EvalRow& {
    for (const auto& row : r.eval)
      if (row.method == method && row.shots == shots) return row;
    FAIL("missing row " << method << " K = " << shots);
    return r.eval[0];
  };
  for (int shots : {5, 10, 20}) {
    const auto& maml = find("maml", shots);
    const auto& pre = find("pretrained", shots);
    INFO("K = " << shots << ": MAML " << maml.mse[1] << " / " << maml.mse[3] << ", pretrained " << pre.mse[1] << " / "
                << pre.mse[3]);
    CHECK(maml.mse[1] < pre.mse[1]);      // after 1 step
    CHECK(maml.mse[3] < pre.mse[3]);      // after 10 steps
    CHECK(maml.mse[3] < 0.5 * maml.mse[0]);  // adaptation pays off
  }
  CHECK(r.train_seconds > 0);
  CHECK(r.iterations_per_second > 0);
  CHECK(r.panels.size() == 4);

  // the JSON report parses and has the documented structure
  const auto json = mlt::json::parse(sine::to_json(r));
  for (const char* key : {"iterations", "order", "inner_steps", "inner_lr", "meta_lr", "meta_batch", "shots", "hidden",
                          "threads", "seed", "eval_tasks", "report", "plot", "quiet"})
    CHECK(json["config"].has(key));
  CHECK(json["config"]["iterations"].n == 1000);
  CHECK(json["config"]["hidden"].a.size() == 2);
  CHECK(json["train_seconds"].n > 0);
  CHECK(json["iterations_per_second"].n > 0);
  REQUIRE(json["eval"].a.size() == 6);
  for (const auto& e : json["eval"].a) {
    CHECK((e["method"].s == "maml" || e["method"].s == "pretrained"));
    CHECK(e["steps"].a.size() == 4);
    CHECK(e["mse"].a.size() == 4);
    CHECK(e["ci95"].a.size() == 4);
  }

  // the figure: four panels of four curves, the support points, a legend
  const std::string svg = sine::to_svg(r);
  std::size_t curves = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++curves;
  CHECK(curves == 16);
  for (const char* text : {"MAML, K = 5", "MAML, K = 10", "pretrained, K = 5", "pretrained, K = 10", "ground truth",
                           "pre-update", "1 grad step", "10 grad steps"})
    CHECK(svg.find(text) != std::string::npos);
}

TEST_CASE("sine example: a seed reproduces the run exactly", "[example]") {
  sine::Config c = short_run();
  c.iterations = 200;
  c.eval_tasks = 10;
  const auto a = sine::run(c), b = sine::run(c);
  for (std::size_t i = 0; i < a.eval.size(); ++i) CHECK(a.eval[i].mse == b.eval[i].mse);
}

TEST_CASE("sine example: flags", "[example]") {
  sine::Config c;
  CHECK(sine::parse({"--iterations", "500", "--order", "1", "--hidden", "64,32,16", "--inner-lr", "0.02", "--quiet"}, c));
  CHECK(c.iterations == 500);
  CHECK(c.order == 1);
  CHECK(c.hidden == std::vector<metalearn::Index>{64, 32, 16});
  CHECK(c.inner_lr == 0.02);
  CHECK(c.quiet);
  sine::Config d;
  CHECK_FALSE(sine::parse({"--help"}, d));
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--iterations", "ten"},
                                                                {"--order", "3"},
                                                                {"--hidden", "40,,40"},
                                                                {"--hidden", "40,"},
                                                                {"--inner-lr", "-1"},
                                                                {"--inner-lr", "nan"},
                                                                {"--meta-batch", "0"},
                                                                {"--bogus", "1"},
                                                                {"--seed"},
                                                                {"stray"},
                                                                {"--init", "zeros"}}) {
    sine::Config e;
    INFO(bad[0]);
    CHECK_THROWS_AS(sine::parse(bad, e), sine::UsageError);
  }
}

#ifdef METALEARN_SINE_BINARY
TEST_CASE("sine example: a malformed flag exits with status 2 and a message", "[example]") {
  const std::string cmd = std::string(METALEARN_SINE_BINARY) + " --order 7 2>/dev/null";
  const int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  const int help = std::system((std::string(METALEARN_SINE_BINARY) + " --help >/dev/null").c_str());
  CHECK(WEXITSTATUS(help) == 0);
}
#endif
